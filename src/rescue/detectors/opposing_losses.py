from __future__ import annotations

from rescue.detectors.base import Detector, Streak, check_count, check_fraction, check_positive, pct
from rescue.detectors.findings import Finding
from rescue.detectors.generalization_gap import training_partner
from rescue.detectors.stream import MetricStream, Series


class OpposingLosses(Detector):
    """One loss rises steadily while another falls: one part of the model is not learning.

    Seed 003: the discrete head's DLoss rose +167% while the continuous head's CLoss fell -24%.
    A loss counts as rising when its level stays ``rise`` above its first level for
    ``patience`` reports while another loss stands ``fall`` below its own first level. A
    held-out loss rising while its own training loss falls is left to ``generalization_gap``.
    While a score rises steadily over the last ``score_window`` reports, a rising loss is the
    learning itself (a TD loss grows as the returns it predicts grow) and nothing is said.

    >>> from rescue.detectors.base import replay
    >>> reports = [{"dloss": 0.01 * (1 + i / 10), "closs": 0.02 * (1 - i / 40)} for i in range(20)]
    >>> replay(OpposingLosses(), reports)[0].reason
    'dloss rose +91% (0.011 -> 0.021) while closs fell -26%'
    """

    signature = "opposing_losses"

    def __init__(
        self, rise: float = 0.5, fall: float = 0.1, patience: int = 5, score_window: int = 10
    ) -> None:
        self.rise = check_positive("rise", rise)
        self.fall = check_fraction("fall", fall)
        self._streak = Streak(check_count("patience", patience))
        self.score_window = check_count("score_window", score_window, minimum=3)

    def on_report(self, stream: MetricStream) -> Finding | None:
        losses = [s for s in stream.losses() if s.count >= 2 and s.first_level > 0]
        if len(losses) < 2 or stream.score_improving(self.score_window) is not None:
            return None
        for rising in losses:
            if not stream.observed(rising):
                continue
            up = rising.level > (1 + self.rise) * rising.first_level
            falling = next(
                (
                    other
                    for other in losses
                    if other is not rising
                    and not _paired(stream, rising, other)
                    and other.level < (1 - self.fall) * other.first_level
                ),
                None,
            )
            onset = self._streak.update(rising.name, up and falling is not None, stream.step)
            if onset is not None and falling is not None:
                return self.finding(
                    stream,
                    rising.name,
                    f"{rising.name} rose {pct(rising.level / rising.first_level)} "
                    f"({rising.first_level:.4g} -> {rising.level:.4g}) while {falling.name} "
                    f"fell {pct(falling.level / falling.first_level)}",
                    onset=onset,
                    rising=rising.name,
                    falling=falling.name,
                    rising_change=rising.level / rising.first_level - 1,
                    falling_change=falling.level / falling.first_level - 1,
                )
        return None


def _paired(stream: MetricStream, a: Series, b: Series) -> bool:
    """``val_loss`` and ``loss`` measure one objective on two data sets, not two parts."""
    return training_partner(stream, a.name) is b or training_partner(stream, b.name) is a
