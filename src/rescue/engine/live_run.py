"""A run from its start to its end, as a rescue's run and a sweep's trial alike: its folder, the
monitor that takes its reports in the driver, and its record, filled from the monitor once the
lane says how the run ended."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rescue import layout
from rescue.detectors.judge import JudgeSpec
from rescue.detectors.run_monitor import ReportListener, RunMonitor
from rescue.engine.inputs import check_inputs
from rescue.engine.lane import CheckpointListener, Execution, RunRequest
from rescue.engine.record import RunRecord
from rescue.worker.command_line import CommandSpec
from rescue.worker.reporting import Metrics


@dataclass
class LiveRun:
    record: RunRecord
    folder: Path
    monitor: RunMonitor
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(
        cls,
        record: RunRecord,
        out: Path,
        spec: JudgeSpec,
        listener: ReportListener | None = None,
        deadline: float | None = None,
    ) -> LiveRun:
        """The run ``record`` under ``out``, judged as ``spec`` says (its worker gets the same
        spec); ``deadline``: when the wall-clock budget is spent (``time.monotonic()``)."""
        folder = layout.run_folder(out, record.run)
        folder.mkdir(parents=True, exist_ok=True)
        monitor = RunMonitor.of(spec, folder / layout.METRICS, listener, deadline)
        return cls(record, folder, monitor)

    def request(
        self,
        resume_from: str | None = None,
        on_checkpoint: CheckpointListener | None = None,
        replay: list[Metrics] | None = None,
    ) -> RunRequest:
        """What a lane runs: the record's config, monitored here."""
        request = RunRequest(
            dict(self.record.config), self.monitor, str(self.folder), resume_from, on_checkpoint
        )
        request.replay = list(replay or [])
        return request

    def end(self, execution: Execution, entry: str, command: CommandSpec | None) -> None:
        """Fill the record from how the run ended and what its monitor saw. A run stopped at
        its declared length completed; a completed run without the metrics the cfg needs is
        misconfigured (``entry``, ``command``: what it ran, for the reason's words)."""
        monitor = self.monitor
        monitor.close()
        status, error = execution.status, execution.error
        if status == "stopped" and monitor.verdict is None and monitor.reached_length:
            status = "completed"
        if status == "crashed":
            monitor.crashed(error or "")
        elif status == "completed":
            check_inputs(monitor, self.folder, entry, command)
            monitor.completed()
        self.record.ended(monitor, status, error, time.monotonic() - self.started)
