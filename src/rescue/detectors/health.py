"""The value Optuna is told for a run: a scale-free measure of health, so runs stay comparable
when a remedy changes a metric's units (a normalisation swap can move a loss by orders of
magnitude).

With a ``success`` target it is how far the first target metric's level (the median of its
last three values) is from its target, in decades: ``log10(value / target)`` for ``below``,
``log10(target / value)`` for ``above``
(<= 0 means met). Without one it is the first loss relative to its own first level,
``log10(level / first_level)``. Lower is better; non-finite values count as +10.
"""

from __future__ import annotations

import math

from rescue.detectors.stream import MetricStream
from rescue.kinds import Kind

WORST = 10.0


def _decades(ratio: float) -> float:
    if not math.isfinite(ratio):
        return WORST
    if ratio <= 0:
        return -WORST
    return max(-WORST, min(WORST, math.log10(ratio)))


def health(stream: MetricStream) -> float:
    for name, target in stream.targets.items():
        series = stream.series.get(name)
        if series is None:
            continue
        if not math.isfinite(series.last):
            return WORST
        value = series.level  # the median of its last three: one noisy episode is not the run
        if target.below is not None:
            if target.below <= 0:
                return _decades(1 + value - target.below)
            return _decades(value / target.below)
        if target.above <= 0 or value <= 0:
            return _decades(1 + target.above - value)
        return _decades(target.above / value)
    for series in stream.of_kind(Kind.LOSS):
        if not math.isfinite(series.last):
            return WORST
        if series.first_level > 0 and series.level > 0:
            return _decades(series.level / series.first_level)
        return 0.0
    return 0.0


def health_basis(stream: MetricStream) -> str:
    """What :func:`health` measured: ``target`` when every success target was reported,
    ``loss`` otherwise; values on different bases are not compared."""
    if stream.targets and all(name in stream.series for name in stream.targets):
        return "target"
    return "loss"
