from __future__ import annotations

from rescue.detectors.above_threshold import AboveThreshold
from rescue.detectors.base import check_fraction
from rescue.detectors.stream import Series
from rescue.kinds import Kind


class Saturation(AboveThreshold):
    """Sigmoid/tanh units sit in their flat tails, where gradients vanish: weights initialised
    too large, or inputs not normalised.

    ``saturated_fraction`` (from ``rescue.watch``) stays above ``fraction`` for ``patience``
    reports.

    >>> from rescue.detectors.base import replay
    >>> replay(Saturation(patience=3), [{"saturated_fraction": 0.8}] * 3)[0].reason
    'saturated_fraction 80% of sigmoid/tanh outputs are saturated, for 3 reports'
    """

    signature = "saturation"
    kind = Kind.SATURATION

    def __init__(self, fraction: float = 0.5, patience: int = 5) -> None:
        super().__init__(patience)
        self.threshold = check_fraction("fraction", fraction)

    def reason(self, series: Series, reports: int) -> str:
        return (
            f"{series.name} {series.level:.0%} of sigmoid/tanh outputs are saturated, "
            f"for {reports} reports"
        )
