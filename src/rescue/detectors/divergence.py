from __future__ import annotations

from rescue.detectors.base import (
    Detector,
    Streak,
    check_count,
    check_fraction,
    check_positive,
    pct,
)
from rescue.findings import Finding
from rescue.kinds import Kind
from rescue.stream import MetricStream


class Divergence(Detector):
    """A loss climbs well above its best and keeps climbing.

    The loss *level* (median of the last three reports) must stand ``rise`` above its best level
    for ``patience`` reports in a row without falling back. The climb must also be a real share
    (``min_climb``) of the progress made since the start, so a loss that legitimately went to
    ~0 does not alarm on noise. A loss that rises while another loss of the same run improves is
    left to ``opposing_losses``.

    >>> from rescue.stream import MetricStream
    >>> stream, detector = MetricStream(), Divergence()
    >>> findings = []
    >>> for loss in [0.2847, 0.4057, 0.43, 0.44, 0.458]:  # seed 002's five epochs
    ...     _ = stream.append({"loss": loss})
    ...     findings.append(detector.on_report(stream))
    >>> findings[3].reason
    'loss rose +51% above its best (0.2847 -> 0.43) over 2 reports'
    """

    signature = "divergence"

    def __init__(
        self,
        rise: float = 0.3,
        min_climb: float = 0.25,
        patience: int = 2,
        other_improving: float = 0.1,
    ) -> None:
        self.rise = check_positive("rise", rise)
        self.min_climb = check_fraction("min_climb", min_climb)
        self.other_improving = check_fraction("other_improving", other_improving)
        self._streak = Streak(check_count("patience", patience))
        self._onset_level: dict[str, float] = {}

    def on_report(self, stream: MetricStream) -> Finding | None:
        losses = list(stream.of_kind(Kind.LOSS))
        for series in losses:
            best, level = series.min_level, series.level
            climb = level - best
            progress = max(series.first_level - best, 0.0)
            climbing = (
                series.count >= 2
                and climb > self.rise * abs(best)
                and climb > self.min_climb * progress
                and level >= self._onset_level.get(series.name, level)
                and not self._other_loss_improving(losses, series.name)
            )
            if climbing:
                self._onset_level.setdefault(series.name, level)
            else:
                self._onset_level.pop(series.name, None)
            onset = self._streak.update(series.name, climbing, stream.step)
            if onset is not None:
                return self.finding(
                    stream,
                    series.name,
                    f"{series.name} rose {pct(level / best)} above its best "
                    f"({best:.4g} -> {level:.4g}) over {stream.step - onset + 1} reports",
                    onset=onset,
                    best=best,
                    best_step=series.min_level_step,
                    level=level,
                )
        return None

    def _other_loss_improving(self, losses: list, name: str) -> bool:
        return any(
            other.name != name
            and other.count >= 3
            and other.level < (1 - self.other_improving) * other.first_level
            and other.level <= (1 + self.other_improving) * other.min_level
            for other in losses
        )
