"""How a run's watched metric is going, besides any failure signature: whether it still
improves, whether it is on course to meet its target, and whether it blew up early and stayed
high. The supervisor reads these facts off a curve as a person does: the first to hold off a
restart, the others to tell which way a knob was wrong.

Every count is in the metric's own observations; trends are fitted in log space for a
positive metric (training curves fall geometrically), on the last ``TREND_WINDOW`` values.

>>> from rescue.config import Target
>>> from rescue.detectors.stream import MetricStream
>>> stream = MetricStream(targets={"loss": Target(below=0.1)})
>>> for step in range(12):
...     _ = stream.append({"loss": 0.9 ** step})
>>> course_of(stream).improving, on_course(stream, length=60)
(True, True)
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from rescue.config import Target
from rescue.detectors.stream import WINDOW, MetricStream, Series
from rescue.kinds import Kind

TREND_WINDOW = 10
# A noisy metric (an accuracy measured every step) can rise over a run while its last ten values
# show no clear trend: on course is also judged over the longest window a series keeps.
LONG_TREND_WINDOW = WINDOW
MIN_OBSERVATIONS = 4  # fewer say nothing about a course
MIN_FIT = 0.5  # R² a trend needs before anything is read from it
EARLY = 5  # observations that count as the start of a run
SPIKE = 2.0  # an early value this many times the first one is a blow-up
WORSE = 0.2  # a level this much (relative) off its best is worse, not noise
DEGRADED = 0.3  # a run that ends this much (relative) worse than it started was made worse
# A run that would need more than this many times its length, at its recent pace, to meet its
# target improves too slowly for that improvement to say much about its step size.
PACE = 4.0


@dataclass(frozen=True)
class Course:
    """The watched metric's course: the first ``success`` target reported, else the first
    loss. ``trend`` is its change per observation over the recent window (in decades for a
    positive metric), signed so that positive means better; ``fit`` is that trend's R².
    ``pace``: the observations it would need at that trend to meet its target, as a multiple of
    those it had (None without a target on it)."""

    metric: str
    lower_is_better: bool
    observations: int
    first: float
    first_level: float
    best: float
    level: float
    trend: float
    fit: float
    early_spike: bool
    pace: float | None = None

    @property
    def improving(self) -> bool:
        """Still getting better along a clear trend at the end of the run."""
        return self.trend > 0 and self.fit >= MIN_FIT

    @property
    def on_pace(self) -> bool:
        """Improving fast enough to meet its target within ``PACE`` times its length, as far
        as can be told: a creep far from the target is not."""
        return self.improving and (self.pace is None or self.pace <= PACE)

    @property
    def degraded(self) -> bool:
        """Training left the metric worse than where it started: a return fallen below the
        first episodes', a loss above its first report."""
        start = self.first_level  # the median of its first three: not one noisy episode
        if self.observations < MIN_OBSERVATIONS or not math.isfinite(start):
            return False
        worse = self.level - start if self.lower_is_better else start - self.level
        return worse > DEGRADED * abs(start)

    @property
    def worsening(self) -> bool:
        """Getting worse along a clear trend at the end of the run, well off its best."""
        off = abs(self.level - self.best) > WORSE * abs(self.best)
        return self.trend < 0 and self.fit >= MIN_FIT and off

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def watched_series(stream: MetricStream) -> Series | None:
    """The metric a run is judged by: the first ``success`` target it misses (else the first
    target); when that was observed fewer than ``MIN_OBSERVATIONS`` times (an evaluation at the
    end), the most often reported loss, whose curve says more."""
    reported = [
        stream.series[name]
        for name in stream.targets
        if name in stream.series and stream.series[name].recent
    ]
    missed = [s for s in reported if not stream.targets[s.name].met_by(s.level)]
    chosen = (missed or reported or [None])[0]
    if chosen is not None and chosen.count >= MIN_OBSERVATIONS:
        return chosen
    losses = [s for s in stream.of_kind(Kind.LOSS) if s.recent]
    dense = max(losses, key=lambda s: s.count, default=None)
    if dense is not None and (chosen is None or dense.count > chosen.count):
        return dense
    return chosen


def _trend(series: Series, lower: bool, size: int = TREND_WINDOW) -> tuple[float, float]:
    values = series.window(size)
    if len(values) < 4 or len(set(values)) < 2:
        return 0.0, 0.0
    positive = all(v > 0 for v in values)
    ys = [math.log10(v) for v in values] if positive else values
    xs = range(len(ys))
    slope = statistics.linear_regression(xs, ys).slope
    fit = statistics.correlation(xs, ys) ** 2
    if not positive:  # a relative change per observation, as the log scale gives
        slope /= max(statistics.fmean(abs(v) for v in values), 1e-12)
    return (-slope if lower else slope), fit


def _to_target(series: Series, target: Target, trend: float) -> float:
    """How many more observations ``series`` needs at ``trend`` to meet ``target``."""
    if target.met_by(series.level):
        return 0.0
    if trend <= 0:
        return math.inf
    goal = target.below if target.below is not None else target.above
    assert goal is not None
    if all(v > 0 for v in series.window(TREND_WINDOW)) and goal > 0:
        gap = abs(math.log10(series.level / goal))  # in decades, as the trend is
    else:
        gap = abs(series.level - goal) / max(abs(series.level), 1e-12)
    return gap / trend


def course_of(stream: MetricStream) -> Course | None:
    series = watched_series(stream)
    if series is None:
        return None
    target = stream.targets.get(series.name)
    lower = target.below is not None if target is not None else series.kind.lower_is_better
    trend, fit = _trend(series, lower)
    early = list(series.recent)[:EARLY] if series.count <= len(series.recent) else []
    spike = (
        lower
        and len(early) >= 2
        and series.first > 0
        and max(early) > SPIKE * series.first
        and series.level > series.first  # and it never came back below where it started
    )
    pace = None
    if target is not None and series.count >= MIN_OBSERVATIONS:
        pace = _to_target(series, target, trend) / series.count
    return Course(
        metric=series.name,
        lower_is_better=lower,
        observations=series.count,
        first=series.first,
        first_level=series.first_level,
        best=series.min_level if lower else series.max_level,
        level=series.level,
        trend=trend,
        fit=fit,
        early_spike=bool(spike),
        pace=pace,
    )


def on_course(stream: MetricStream, length: int | None = None) -> bool:
    """Whether every ``success`` target is met, or on course to be met by the end of the run
    along the trend of its recent observations (its last ``TREND_WINDOW``, or the last
    ``LONG_TREND_WINDOW``): by the declared ``length`` in reports, or else assuming the run goes
    on as long again as it has gone. Without a target, False."""
    if not stream.targets:
        return False
    reports = stream.step + 1
    left = max((length - reports) if length is not None else reports, 0)
    for name, target in stream.targets.items():
        series = stream.series.get(name)
        if series is None or not series.recent:
            return False
        if target.met_by(series.level):
            continue
        remaining = left * series.count / reports  # in its own observations
        if not any(
            _reaches(series, target, size, remaining) for size in (TREND_WINDOW, LONG_TREND_WINDOW)
        ):
            return False
    return True


def _reaches(series: Series, target: Target, size: int, remaining: float) -> bool:
    """Whether the trend of the last ``size`` observations, if clear, meets ``target`` within
    ``remaining`` more."""
    trend, fit = _trend(series, target.below is not None, size)
    return trend > 0 and fit >= MIN_FIT and _to_target(series, target, trend) <= remaining
