"""The metric stream of one run: every report, and cheap running statistics per metric that
detectors read instead of rescanning the history (the per-report cost stays constant)."""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rescue.kinds import Kind, MetricKinds

if TYPE_CHECKING:
    from rescue.config import Target

WINDOW = 64  # the longest window any built-in detector looks at


def _median(values: deque[float]) -> float:
    """The median of one to three values."""
    if len(values) == 3:  # the usual case, without sorting: the middle one of three
        a, b, c = values
        return max(min(a, b), min(max(a, b), c))
    tail = sorted(values)
    return tail[len(tail) // 2] if len(tail) % 2 else (tail[0] + tail[1]) / 2


@dataclass
class Series:
    """Running statistics of one scalar metric, counted in its own observations: a held-out
    metric printed every 50 steps has one observation per 50 reports, and every count and
    window of a detector is in those observations, never in the run's report index.

    ``level`` is the median of the last three values: it follows a trend but ignores a single
    outlier, which is what a person reading a curve does. ``early_scale`` is the largest
    magnitude among the first three values. ``first_level`` is the level once three values are
    in: where the metric stood when the run started reporting, which is not the level of an
    untrained model (logging every N steps, the first report may already hold the fast initial
    drop, or a blow-up).
    """

    name: str
    kind: Kind
    count: int = 0
    first: float = math.nan
    last: float = math.nan
    level: float = math.nan
    first_level: float = math.nan
    early_scale: float = 0.0
    ever_negative: bool = False
    min_level: float = math.inf
    min_level_step: int = -1
    min_level_index: int = -1  # the observation index of the best (lowest) level
    max_level: float = -math.inf
    max_level_step: int = -1
    max_level_index: int = -1
    unchanged_since: int = 0  # the report index of the first of the latest run of equal values
    unchanged_count: int = 0  # the observation index of the same value
    last_step: int = -1  # the report index of the latest observation
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    tail: deque[float] = field(default_factory=lambda: deque(maxlen=3))
    levels: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def add(self, step: int, value: float) -> None:
        if self.count and value != self.last:
            self.unchanged_since, self.unchanged_count = step, self.count
        if not self.count:
            self.first = value
            self.unchanged_since, self.unchanged_count = step, 0
        self.last = value
        self.last_step = step
        self.count += 1
        if not math.isfinite(value):
            return
        self.ever_negative = self.ever_negative or value < 0
        self.recent.append(value)
        self.tail.append(value)
        self.level = _median(self.tail)
        self.levels.append(self.level)
        if len(self.recent) <= 3:
            self.early_scale = max(self.early_scale, abs(value))
            self.first_level = self.level if len(self.recent) == 3 else self.recent[0]
        if self.level < self.min_level:
            self.min_level, self.min_level_step = self.level, step
            self.min_level_index = self.count - 1
        if self.level > self.max_level:
            self.max_level, self.max_level_step = self.level, step
            self.max_level_index = self.count - 1

    def window(self, size: int) -> list[float]:
        values = list(self.recent)
        return values[-size:]

    @property
    def unchanged_for(self) -> int:
        """How many of its latest observations had the same value."""
        return self.count - self.unchanged_count


@dataclass
class Distribution:
    """The latest value of a vector metric, such as predicted class usage."""

    name: str
    kind: Kind
    count: int = 0
    last: tuple[float, ...] = ()


class MetricStream:
    """Reports in order; ``step`` is the index of the latest report."""

    def elapsed(self) -> float | None:
        """The fraction of the declared run length done, or None when no length is declared."""
        return None if self.length is None else (self.step + 1) / self.length

    def __init__(
        self,
        kinds: MetricKinds | None = None,
        targets: Mapping[str, Target] | None = None,
        length: int | None = None,
    ) -> None:
        """``length``: the run's declared length in reports (``budget.reports_per_run``), if
        known: how much of the run is left is part of judging some signatures."""
        self.kinds = kinds or MetricKinds()
        self.targets: dict[str, Target] = dict(targets or {})
        self.length = length
        self.step = -1
        self.latest: dict[str, float | list[float]] = {}
        self.series: dict[str, Series] = {}
        self.distributions: dict[str, Distribution] = {}
        # The series of each kind, and the losses, as detectors ask for them at every report;
        # cleared when a series is added or a loss first goes negative.
        self._of_kind: dict[tuple[Kind, ...], tuple[Series, ...]] = {}
        self._losses: tuple[Series, ...] | None = None

    def append(self, metrics: Mapping[str, float | list[float]]) -> int:
        self.step += 1
        self.latest = dict(metrics)
        for name, value in metrics.items():
            if isinstance(value, list):
                dist = self.distributions.get(name)
                if dist is None:
                    dist = self.distributions[name] = Distribution(name, self.kinds(name))
                dist.count += 1
                dist.last = tuple(value)
            else:
                series = self.series.get(name)
                if series is None:
                    series = self.series[name] = Series(name, self.kinds(name))
                    self._of_kind.clear()
                    self._losses = None
                elif value < 0 and not series.ever_negative:
                    self._losses = None
                series.add(self.step, value)
        return self.step

    def of_kind(self, *kinds: Kind) -> Iterator[Series]:
        found = self._of_kind.get(kinds)
        if found is None:
            found = self._of_kind[kinds] = tuple(s for s in self.series.values() if s.kind in kinds)
        return iter(found)

    def observed(self, series: Series | Distribution) -> bool:
        """Whether the latest report holds ``series``: detectors judge a metric when it is
        observed, so that its counts are its own and a stale value is not judged again."""
        return series.name in self.latest

    def losses(self) -> Iterator[Series]:
        """Loss metrics on a proper lower-is-better scale. A "loss" that goes negative (a
        policy-gradient surrogate) has no meaningful relative change, so the relative
        detectors leave it alone; non-finite values and explosions are still caught."""
        if self._losses is None:
            self._losses = tuple(
                s for s in self.series.values() if s.kind is Kind.LOSS and not s.ever_negative
            )
        return iter(self._losses)

    def score_near_best(self, hold: float) -> Series | None:
        """A score whose level is within ``hold`` of its range from its best, if any: while
        the objective a person cares about improves, a loss moving is not a failure."""
        for score in self.of_kind(Kind.SCORE):
            span = score.max_level - score.min_level
            if score.count >= 3 and span > 0 and score.level >= score.max_level - hold * span:
                return score
        return None

    def score_improving(self, window: int, fit: float = 0.5) -> Series | None:
        """A score that rose over the last ``window`` reports along a trend that explains at
        least ``fit`` of its variance (R²), if any: learning that shows in the objective, as
        opposed to a noisy flat score that happens to touch its best."""
        for score in self.of_kind(Kind.SCORE):
            values = score.window(window)
            if len(values) < max(window, 3) or len(set(values)) < 2:
                continue
            xs = range(len(values))
            slope = statistics.linear_regression(xs, values).slope
            if slope > 0 and statistics.correlation(xs, values) ** 2 >= fit:
                return score
        return None

    def distributions_of_kind(self, kind: Kind) -> Iterator[Distribution]:
        return (d for d in self.distributions.values() if d.kind is kind)
