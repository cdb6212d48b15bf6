"""The shape shared by the detectors of ``rescue.watch`` signals: a health metric of one kind
whose level stays above a threshold for ``patience`` reports."""

from __future__ import annotations

from typing import ClassVar

from rescue.detectors.base import Detector, Streak, check_count
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream, Series
from rescue.kinds import Kind


class AboveThreshold(Detector):
    """Subclasses set ``kind`` and ``threshold``, and say why in :meth:`reason`."""

    kind: ClassVar[Kind]
    threshold: float

    def __init__(self, patience: int) -> None:
        self._streak = Streak(check_count("patience", patience))

    def applies(self, series: Series) -> bool:
        """Whether this series can show the condition at all (e.g. it started healthy)."""
        return True

    def reason(self, series: Series, reports: int) -> str:
        raise NotImplementedError

    def on_report(self, stream: MetricStream) -> Finding | None:
        for series in stream.of_kind(self.kind):
            if not stream.observed(series):
                continue
            above = self.applies(series) and series.level > self.threshold
            onset = self._streak.update(series.name, above, stream.step)
            if onset is not None:
                return self.finding(
                    stream,
                    series.name,
                    self.reason(series, self._streak.length(series.name)),
                    onset=onset,
                    level=series.level,
                    first=series.first_level,
                    threshold=self.threshold,
                )
        return None
