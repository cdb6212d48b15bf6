"""What every mirror is: a display of the supervisor's events, kept from ever stopping it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rescue.config import MirrorOptions
from rescue.detectors.findings import Finding
from rescue.engine.display import Display
from rescue.engine.record import RescueReport, RunRecord
from rescue.worker.reporting import Metrics


def remedy_text(record: RunRecord) -> str | None:
    """``lr_cut for divergence: lr 0.8 -> 0.0428 (why ...)``, once the next run has begun."""
    remedy = record.remedy
    if not remedy:
        return None
    changes = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in remedy["changes"].items())
    return f"{remedy['name']} for {remedy['for']}: {changes or 'no change'} ({remedy['why']})"


def verdict_text(record: RunRecord) -> str:
    verdict = record.verdict
    return f"{verdict.signature}: {verdict.reason}" if verdict else record.status


class Displays:
    """The terminal first, then each mirror; a mirror that raises is dropped with a warning."""

    def __init__(self, first: Display, mirrors: Sequence[Display] = ()) -> None:
        self.first, self.mirrors = first, list(mirrors)

    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None:
        self.first.run_started(record, changes)
        self._each("run_started", record, changes)

    def reported(self, step: int, metrics: Metrics, findings: list[Finding]) -> None:
        self.first.reported(step, metrics, findings)
        self._each("reported", step, metrics, findings)

    def run_ended(self, record: RunRecord) -> None:
        self.first.run_ended(record)
        self._each("run_ended", record)

    def finished(self, report: RescueReport) -> None:
        self._each("finished", report)  # before the terminal's last words
        self.first.finished(report)

    def _each(self, event: str, *args: Any) -> None:
        for mirror in list(self.mirrors):
            try:
                getattr(mirror, event)(*args)
            except Exception as exc:  # the tracker's trouble is not the rescue's
                self.mirrors.remove(mirror)
                print(
                    f"rescue: mirror {type(mirror).__name__} switched off: "
                    f"{type(exc).__name__}: {exc}",
                    file=sys.stderr,
                )


def open_mirrors(options: MirrorOptions, label: str) -> list[Display]:
    """The mirrors the cfg's ``mirror:`` asks for, opened (a missing package is a RescueError
    here, before anything runs)."""
    mirrors: list[Display] = []
    if options.mlflow is not None:
        from rescue.mirror.mlflow import MlflowMirror

        mirrors.append(MlflowMirror(options.mlflow.tracking_uri, options.mlflow.experiment, label))
    if options.tensorboard is not None:
        from rescue.mirror.tensorboard import TensorBoardMirror

        mirrors.append(TensorBoardMirror(options.tensorboard.logdir))
    return mirrors
