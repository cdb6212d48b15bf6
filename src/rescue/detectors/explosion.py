from __future__ import annotations

from rescue.detectors.base import Detector, Streak, check_count, check_positive
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream
from rescue.kinds import Kind


class Explosion(Detector):
    """A loss is orders of magnitude above its early level or above a natural scale.

    ``growth``: how many times its early scale (the largest magnitude among its first three
    reports, so a loss that starts near zero, like a policy-gradient loss, has a fair scale)
    a loss may reach. ``ceiling``: a level no loss
    on sanely scaled targets reaches (seed 004's value loss stood at 998,829 from its first
    report, so only an absolute scale can see it); set it to ``null`` for losses whose natural
    scale is large (sums over many elements).

    >>> from rescue.detectors.stream import MetricStream
    >>> stream, detector = MetricStream(), Explosion()
    >>> for v in [998829.64, 224572.52]:
    ...     _ = stream.append({"value_loss": v})
    ...     finding = detector.on_report(stream)
    >>> finding.signature
    'explosion'
    """

    signature = "explosion"

    def __init__(
        self, growth: float = 100.0, ceiling: float | None = 1.0e4, patience: int = 2
    ) -> None:
        self.growth = check_positive("growth", growth)
        self.ceiling = None if ceiling is None else check_positive("ceiling", ceiling)
        self._streak = Streak(check_count("patience", patience))

    def on_report(self, stream: MetricStream) -> Finding | None:
        for series in stream.of_kind(Kind.LOSS):
            if not stream.observed(series):
                continue
            level, early = series.level, series.early_scale
            grown = not series.ever_negative and early > 0 and level > self.growth * early
            # A success target states the metric's scale: a summed loss whose target is 2e4
            # lives above any fixed ceiling.
            target = stream.targets.get(series.name)
            scale = self.ceiling
            if scale is not None and target is not None and target.below is not None:
                scale = max(scale, 10 * abs(target.below))
            huge = scale is not None and abs(level) > scale
            onset = self._streak.update(series.name, grown or huge, stream.step)
            if onset is None:
                continue
            if huge:
                why = f"{series.name} is {level:.4g}, above the natural scale {scale:g}"
            else:
                why = (
                    f"{series.name} is {level / early:.0f}x its early scale "
                    f"({early:.4g} -> {level:.4g})"
                )
            return self.finding(stream, series.name, why, onset=onset, level=level, early=early)
        return None
