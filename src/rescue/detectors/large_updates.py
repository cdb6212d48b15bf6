from __future__ import annotations

from rescue.detectors.above_threshold import AboveThreshold
from rescue.detectors.base import check_positive
from rescue.detectors.stream import Series
from rescue.kinds import Kind


class LargeUpdates(AboveThreshold):
    """Each optimizer step moves the weights by a large fraction of their size: the learning
    rate is too high, usually a few reports before the loss shows it.

    ``update_ratio`` (‖Δw‖/‖w‖ per step, from ``rescue.watch``; about 1e-3 is healthy) stays
    above ``max_ratio`` for ``patience`` reports.

    >>> from rescue.detectors.base import replay
    >>> reports = [{"loss": 0.3, "update_ratio": r} for r in [0.01, 0.2, 0.3, 0.4, 0.5]]
    >>> replay(LargeUpdates(), reports)[0].reason
    'update_ratio 0.3 (weights move 30% per step; healthy is about 0.1%) for 2 reports'
    """

    signature = "large_updates"
    kind = Kind.UPDATE_RATIO

    def __init__(self, max_ratio: float = 0.15, patience: int = 2) -> None:
        super().__init__(patience)
        self.threshold = check_positive("max_ratio", max_ratio)

    def reason(self, series: Series, reports: int) -> str:
        return (
            f"{series.name} {series.level:.3g} (weights move {series.level:.0%} per step; "
            f"healthy is about 0.1%) for {reports} reports"
        )
