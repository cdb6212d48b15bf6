from __future__ import annotations

from rescue.detectors.above_threshold import AboveThreshold
from rescue.detectors.base import check_fraction
from rescue.detectors.stream import Series
from rescue.kinds import Kind


class DyingUnits(AboveThreshold):
    """ReLU units that were alive have died during training (zero for every example), the
    classic consequence of steps too large; units dead from the start are a dead
    initialisation instead (``dead_output``).

    ``dead_fraction`` (from ``rescue.watch``) was first below half of ``fraction`` and has stayed
    above ``fraction`` for ``patience`` reports.

    >>> from rescue.detectors.base import replay
    >>> reports = [{"dead_fraction": f} for f in [0.02, 0.03, 0.02, 0.6, 0.7, 0.7, 0.7, 0.7]]
    >>> replay(DyingUnits(patience=3), reports)[0].reason
    'dead_fraction rose from 2% to 70% for 3 reports: ReLU units died during training'
    """

    signature = "dying_units"
    kind = Kind.DEAD_FRACTION

    def __init__(self, fraction: float = 0.4, patience: int = 3) -> None:
        super().__init__(patience)
        self.threshold = check_fraction("fraction", fraction)

    def applies(self, series: Series) -> bool:
        return series.first < self.threshold / 2

    def reason(self, series: Series, reports: int) -> str:
        return (
            f"{series.name} rose from {series.first:.0%} to {series.level:.0%} for "
            f"{reports} reports: ReLU units died during training"
        )
