"""Resuming a sweep whose supervisor was killed (``rescue resume OUTDIR`` on a sweep's folder).

The sweep rewrites ``report.json`` when every trial starts and ends; its ``resume`` entry says
how the sweep was started. From it, :func:`load_sweep` rebuilds the sweep without Ray or
Optuna: trials that ended are kept as recorded, and each trial that was in flight is run
again with the same params (:meth:`rescue.engine.sweep.SweepLoop.take_over`), its files so far kept
in ``runs/run-NNN/interrupted-K/``. The Optuna trials the killed process left open are failed
(the sampler ignores them); the study goes on with every finished trial it holds.

>>> SweepResume(trials=8, parallel=2).to_dict()["trials"]
8
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rescue import layout
from rescue.engine.resume import move_files
from rescue.engine.sweep import SweepReport, SweepTrial
from rescue.errors import RescueError
from rescue.search.study import default_storage

INTERRUPTED = "the supervisor stopped during this trial"


@dataclass
class SweepResume:
    """How the sweep was started: report.json's ``resume`` entry of a sweep."""

    trials: int
    parallel: int
    sweep_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # tags its Optuna trials
    entry: str = "train"
    command: dict[str, Any] | None = None  # a plain script's CommandSpec.to_dict()
    seed: int | None = None
    address: str | None = None
    rescue_sick: bool = False
    spent_seconds: float = 0.0
    resumes: int = 0  # how many times it was resumed; names each resume's Ray Tune experiment

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepResume:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class SavedSweep:
    out: Path
    report: SweepReport
    resume: SweepResume

    @property
    def ended(self) -> bool:
        return self.report.outcome not in ("running", "interrupted")

    @property
    def in_flight(self) -> list[SweepTrial]:
        return [t for t in self.report.runs if t.outcome == "running"]


def is_sweep_folder(out: str | Path) -> bool:
    """Whether ``out`` holds a sweep's report.json (anything else is left to the rescue's
    resume, which says what is wrong with it)."""
    try:
        data = json.loads((Path(out) / layout.REPORT_JSON).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "sweep" in data


def load_sweep(out: str | Path) -> SavedSweep:
    out = Path(out).resolve()
    path = out / layout.REPORT_JSON
    try:
        data = json.loads(path.read_text())
        report = SweepReport.from_dict(data)
        resume = SweepResume.from_dict(data["resume"])
    except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RescueError(
            f"{path}: expected the resume state rescue sweep writes ({exc!r})"
        ) from None
    if report.storage == default_storage(Path(report.out)):  # the SQLite file moved with it
        report.storage = default_storage(out)
    report.out = str(out)
    return SavedSweep(out, report, resume)


def interrupted_note(out: Path, trial: SweepTrial) -> dict[str, Any]:
    """The ``resumed`` note of an interrupted trial's rerun, its files set aside."""
    folder = layout.run_folder(out, trial.run)
    metrics = folder / layout.METRICS
    reports = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
    kept = layout.next_interrupted(folder)
    move_files(folder, kept)  # its rerun writes fresh ones; nothing recorded is lost
    return {
        "how": "fresh",
        "why": INTERRUPTED,
        "interrupted_trial": trial.trial,
        "reports_before": reports,
        "kept": str(kept.relative_to(out)),
    }
