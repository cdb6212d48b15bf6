"""Mirror a rescue to TensorBoard: one folder per training run under ``logdir`` (run-000,
run-001, ...), every report's scalars at its report index as the step, and as text its config,
findings, verdict and the remedy that led to it; the rescue's outcome under ``rescue``.

>>> import pathlib, tempfile
>>> from rescue.engine.record import RunRecord
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> mirror = TensorBoardMirror(folder)
>>> mirror.run_started(RunRecord(run=0, config={"lr": 0.8}), {})
>>> mirror.reported(0, {"loss": 2.5}, [])
>>> mirror.run_ended(RunRecord(run=0, config={"lr": 0.8}, status="completed"))
>>> [p.name.startswith("events.out.tfevents") for p in (folder / "run-000").iterdir()]
[True]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord
from rescue.errors import RescueError
from rescue.mirror.base import remedy_text, verdict_text
from rescue.worker.reporting import Metrics


class TensorBoardMirror:
    def __init__(self, logdir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RescueError(
                "mirror.tensorboard needs TensorBoard: pip install 'rescue[tensorboard]'"
            ) from None
        self._writer = SummaryWriter
        self.logdir = Path(logdir)
        self.writer: Any = None
        self.last: RunRecord | None = None

    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None:
        self.writer = self._writer(str(self.logdir / f"run-{record.run:03d}"))
        self.writer.add_text("rescue/config", f"`{json.dumps(record.config)}`", 0)
        if self.last is not None and (text := remedy_text(self.last)):
            self.writer.add_text("rescue/remedy", f"after run {self.last.run}: {text}", 0)
        self.last = record

    def reported(self, step: int, metrics: Metrics, findings: list[Finding]) -> None:
        for name, value in metrics.items():
            if isinstance(value, float):
                self.writer.add_scalar(name, value, step)
        for finding in findings:
            self.writer.add_text(
                "rescue/findings", f"{finding.signature} ({finding.action}): {finding.reason}", step
            )

    def run_ended(self, record: RunRecord) -> None:
        self.writer.add_text(
            "rescue/verdict", f"{record.status}; {verdict_text(record)}", record.reports
        )
        self.writer.close()

    def finished(self, report: RescueReport) -> None:
        with self._writer(str(self.logdir / "rescue")) as writer:
            writer.add_text("rescue/outcome", f"{report.outcome}: {report.summary}", 0)
