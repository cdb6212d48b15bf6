"""The detector interface: one small class per signature, fed one report at a time.

A detector reads the run's :class:`~rescue.detectors.stream.MetricStream` (which keeps bounded
running statistics per metric) and returns a :class:`~rescue.detectors.findings.Finding` when it
is sure. It keeps only bounded state of its own, so the cost per report does not grow with the
run.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream
from rescue.kinds import MetricKinds

if TYPE_CHECKING:
    from rescue.config import Target


class Detector(ABC):
    """Base class: subclasses set ``signature`` and implement :meth:`on_report`.

    Constructor arguments are the detector's thresholds; the policy file passes them by name.
    """

    signature: ClassVar[str]

    @abstractmethod
    def on_report(self, stream: MetricStream) -> Finding | None:
        """Called after every report; return a finding once the condition is confirmed."""

    def on_end(self, stream: MetricStream) -> Finding | None:
        """Called once when the run completes normally."""
        return None

    def finding(
        self,
        stream: MetricStream,
        metric: str | None,
        reason: str,
        onset: int | None = None,
        **evidence: Any,
    ) -> Finding:
        return Finding(
            signature=self.signature,
            metric=metric,
            step=stream.step,
            onset=stream.step if onset is None else onset,
            reason=reason,
            evidence=evidence,
        )


class Streak:
    """Counts consecutive observations on which a condition held, per metric. Call
    :meth:`update` once per observation of the metric (see :meth:`MetricStream.observed`), so
    that patience is counted in the metric's own cadence."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self._runs: dict[str, tuple[int, int]] = {}  # key -> (onset step, observations)

    def update(self, key: str, holds: bool, step: int) -> int | None:
        """Returns the onset step once the condition has held ``patience`` observations in a
        row, and on every later observation while it still holds."""
        if not holds:
            self._runs.pop(key, None)
            return None
        onset, seen = self._runs.get(key, (step, 0))
        self._runs[key] = (onset, seen + 1)
        return onset if seen + 1 >= self.patience else None

    def length(self, key: str) -> int:
        """How many observations in a row the condition has held."""
        return self._runs.get(key, (0, 0))[1]


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = number and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be a finite number {bound}, got {value!r}")
    return float(value)


def check_count(name: str, value: int, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return value


def check_fraction(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise ValueError(f"`{name}` must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def check_flag(name: str, value: bool) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be true or false, got {value!r}")
    return value


def pct(ratio: float) -> str:
    """+42% style change for a ratio new/old."""
    return f"{(ratio - 1) * 100:+.0f}%"


def replay(
    detector: Detector,
    reports: Iterable[Mapping[str, float | list[float]]],
    *,
    kinds: Mapping[str, str] | None = None,
    targets: Mapping[str, Target] | None = None,
    completed: bool = False,
) -> list[Finding]:
    """Feed ``reports`` to ``detector`` as a run would; every finding it makes, in order.

    With ``completed`` the run is treated as finished normally and :meth:`Detector.on_end`
    is called at the end.
    """
    stream = MetricStream(MetricKinds(kinds), targets)
    found = []
    for metrics in reports:
        stream.append(metrics)
        finding = detector.on_report(stream)
        if finding is not None:
            found.append(finding)
    if completed:
        finding = detector.on_end(stream)
        if finding is not None:
            found.append(finding)
    return found
