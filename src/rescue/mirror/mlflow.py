"""Mirror a rescue to MLflow: one parent run for the rescue, one child run per training run
with its params, every report's metrics at its report index as the step, its findings, its
verdict, and the remedy that followed it; the rescue's outcome on the parent.

>>> import tempfile
>>> from rescue.engine.record import RunRecord
>>> folder = tempfile.mkdtemp()
>>> mirror = MlflowMirror(f"sqlite:///{folder}/mlflow.db", "rescue", "doctest")
>>> mirror.run_started(RunRecord(run=0, config={"lr": 0.8}), {})
>>> mirror.reported(0, {"loss": 2.5}, [])
>>> mirror.run_ended(RunRecord(run=0, config={"lr": 0.8}, status="completed"))
>>> run = mirror.client.get_run(mirror.runs[0])
>>> run.data.params, run.data.metrics, run.data.tags["rescue.status"]
({'lr': '0.8'}, {'loss': 2.5}, 'completed')
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord
from rescue.errors import RescueError
from rescue.mirror.base import remedy_text, verdict_text
from rescue.worker.reporting import Metrics

BATCH = 900  # MLflow takes at most 1000 metrics per log_batch
SECONDS = 1.0  # the longest a metric waits before it is sent
ENDED = {"completed": "FINISHED", "stopped": "FINISHED", "crashed": "FAILED"}


class MlflowMirror:
    def __init__(self, tracking_uri: str, experiment: str, label: str) -> None:
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise RescueError("mirror.mlflow needs MLflow: pip install 'rescue[mlflow]'") from None
        self._metric, self._param = Metric, Param
        for name in ("mlflow", "alembic"):  # its database set-up talks; the terminal is ours
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment = (
            found.experiment_id if found else self.client.create_experiment(experiment)
        )
        self.parent = self.client.create_run(self.experiment, run_name=label).info.run_id
        self.runs: dict[int, str] = {}  # the rescue's run index -> the MLflow run
        self.last: RunRecord | None = None
        self.pending: list[Any] = []
        self.sent = time.monotonic()

    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None:
        self._tag_remedy()
        run = self.client.create_run(
            self.experiment,
            run_name=f"run-{record.run:03d}",
            tags={"mlflow.parentRunId": self.parent, "rescue.run": str(record.run)},
        ).info.run_id
        self.runs[record.run] = run
        self.last = record
        params = [
            self._param(k, (v if isinstance(v, str) else json.dumps(v))[:6000])
            for k, v in record.config.items()
        ]
        self.client.log_batch(run, params=params)
        if changes:
            self.client.set_tag(run, "rescue.changes", json.dumps(changes))

    def reported(self, step: int, metrics: Metrics, findings: list[Finding]) -> None:
        stamp = int(time.time() * 1000)
        self.pending += [
            self._metric(name, value, stamp, step)
            for name, value in metrics.items()
            if isinstance(value, float)  # per-class lists have no place in a metric
        ]
        if len(self.pending) >= BATCH or time.monotonic() - self.sent >= SECONDS:
            self._send()

    def run_ended(self, record: RunRecord) -> None:
        self._send()
        run = self.runs[record.run]
        self.client.set_tag(run, "rescue.status", record.status)
        self.client.set_tag(run, "rescue.verdict", verdict_text(record)[:5000])
        if record.findings:
            lines = [
                f"report {f.step}: {f.signature} ({f.action}): {f.reason}" for f in record.findings
            ]
            self.client.set_tag(run, "rescue.findings", "\n".join(lines)[:5000])
        self.client.set_terminated(run, ENDED.get(record.status, "KILLED"))

    def finished(self, report: RescueReport) -> None:
        self._tag_remedy()
        self.client.set_tag(self.parent, "rescue.outcome", report.outcome)
        self.client.set_tag(self.parent, "rescue.summary", report.summary[:5000])
        if report.final_config:
            self.client.set_tag(self.parent, "rescue.final_config", json.dumps(report.final_config))
        self.client.set_terminated(self.parent, "FINISHED")

    def _tag_remedy(self) -> None:
        """The remedy is chosen after a run ends: told when the next begins, or at the end."""
        if self.last is not None and (text := remedy_text(self.last)):
            self.client.set_tag(self.runs[self.last.run], "rescue.remedy", text[:5000])

    def _send(self) -> None:
        run = self.runs.get(self.last.run) if self.last else None
        if run is not None:
            while self.pending:
                batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
                self.client.log_batch(run, metrics=batch)
        self.pending = []
        self.sent = time.monotonic()
