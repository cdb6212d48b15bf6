"""What the rescue loop tells as it goes: the terminal and the mirrors listen to these events."""

from __future__ import annotations

from typing import Any, Protocol

from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord
from rescue.worker.reporting import Metrics


class Display(Protocol):
    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None: ...
    def reported(self, step: int, metrics: Metrics, findings: list[Finding]) -> None: ...
    def run_ended(self, record: RunRecord) -> None: ...
    def finished(self, report: RescueReport) -> None: ...
