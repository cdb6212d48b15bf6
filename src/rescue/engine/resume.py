"""Resuming a rescue whose supervisor was killed (``rescue resume OUTDIR``).

The supervisor rewrites ``report.json`` when every run starts and ends; its ``resume`` entry
holds what the loop needs to go on (:class:`Progress`) and how to run the job again. From it
and the run folders, :func:`load_saved` rebuilds the supervisor's state without Ray or
Optuna: the runs that ended are kept as recorded; a run that was in flight when the supervisor
stopped goes on with the same config from the last checkpoint it saved (the supervisor records
each one as its report arrives), its reports up to that checkpoint's replayed
(:class:`Continuation`); without one it restarts fresh, or from the checkpoint it started from.
The files it left are kept in ``runs/run-NNN/interrupted-K/`` (:func:`set_aside`).

A sweep is resumed the same way (:func:`load_sweep`): its ``resume`` entry
(:class:`SweepResume`) says how it was started; trials that ended are kept as recorded, and
each trial that was in flight is run again with the same params
(:meth:`rescue.engine.sweep.SweepLoop.take_over`), its files so far kept in
``runs/run-NNN/interrupted-K/``. The Optuna trials the killed process left open are failed (the
sampler ignores them); the study goes on with every finished trial it holds.

>>> Progress(next_run=2).to_dict()["next_run"]
2
>>> SweepResume(trials=8, parallel=2).to_dict()["trials"]
8
"""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    distribution_to_json,
    json_to_distribution,
)

from rescue import layout, strict_json
from rescue.engine.record import RescueReport, RunRecord
from rescue.engine.sweep import SweepReport, SweepTrial
from rescue.errors import RescueError
from rescue.policy.evidence import Evidence, Observation
from rescue.search.study import default_storage
from rescue.worker.command_line import CommandSpec
from rescue.worker.reporting import Metrics

INTERRUPTED = "the supervisor stopped during this run"
INTERRUPTED_TRIAL = "the supervisor stopped during this trial"


class ResumeError(RescueError):
    """The folder holds no rescue that can be resumed."""


@dataclass
class Continuation:
    """What a run resumed from its last checkpoint takes over from the interrupted attempt:
    the reports up to and including the checkpoint's, replayed before training goes on, and
    the checkpoints saved by then as (step, path), steps 0-based like the reports'."""

    reports: list[Metrics]
    checkpoints: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Progress:
    """Where the loop stands: the next run to start, with what, and what earlier runs taught.

    ``config`` None means the cfg's params (a rescue that has not started a run yet);
    ``resumed`` is the note the next run carries when it restarts an interrupted one, and
    ``continued`` what it takes over when it goes on from its last checkpoint (neither is
    part of report.json's ``resume`` entry: the note is in the run's record, and the reports
    are in the run's files).
    """

    next_run: int = 0
    config: dict[str, Any] | None = None
    search: dict[str, BaseDistribution] = field(default_factory=dict)
    resume_from: str | None = None
    evidence: Evidence = field(default_factory=Evidence)
    tried: Counter[tuple[str, str]] = field(default_factory=Counter)
    spent_seconds: float = 0.0
    resumed: dict[str, Any] | None = None
    continued: Continuation | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_run": self.next_run,
            "config": self.config,
            "search": {k: json.loads(distribution_to_json(d)) for k, d in self.search.items()},
            "resume_from": self.resume_from,
            # Exact values, unlike the human-readable tables of report.json.
            "evidence": [o.to_dict() for o in self.evidence.observations],
            "tried": [[signature, remedy, n] for (signature, remedy), n in self.tried.items()],
            "spent_seconds": round(self.spent_seconds, 2),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        return cls(
            next_run=int(data["next_run"]),
            config=data.get("config"),
            search={k: json_to_distribution(json.dumps(d)) for k, d in data["search"].items()},
            resume_from=data.get("resume_from"),
            evidence=Evidence([Observation.from_dict(o) for o in data.get("evidence") or []]),
            tried=Counter({(s, r): int(n) for s, r, n in data.get("tried") or []}),
            spent_seconds=float(data.get("spent_seconds") or 0.0),
        )


def resume_entry(
    progress: Progress,
    entry: str,
    command: CommandSpec | None,
    seed: int | None,
    address: str | None,
) -> dict[str, Any]:
    """report.json's ``resume`` entry: the loop's progress and how to run the job again."""
    return {
        **progress.to_dict(),
        "entry": entry,
        "command": command.to_dict() if command is not None else None,
        "seed": seed,
        "address": address,
    }


@dataclass
class Saved:
    """A rescue as its output folder holds it, ready to go on."""

    out: Path
    report: RescueReport  # the runs that ended (all of them, once the rescue ended)
    progress: Progress
    entry: str
    command: CommandSpec | None
    seed: int | None
    address: str | None
    interrupted: RunRecord | None = None  # the run in flight when the supervisor stopped

    @property
    def ended(self) -> bool:
        return self.report.outcome not in ("running", "interrupted")


def load_saved(out: str | Path) -> Saved:
    """The state of the rescue in ``out``; :class:`ResumeError` if there is none."""
    out = Path(out).resolve()
    data = _read(out)
    try:
        report = RescueReport.from_dict(data)
        entry = data["resume"]
        progress = Progress.from_dict(entry)
        command = CommandSpec.from_dict(entry.get("command"))
        seed, address = entry.get("seed"), entry.get("address")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResumeError(
            f"{out / layout.REPORT_JSON}: expected the resume state rescue writes ({exc!r})"
        ) from None
    # The default SQLite file moves with the folder.
    moved_from = Path(report.out)
    if report.storage == default_storage(moved_from):
        report.storage = default_storage(out)
    report.out = str(out)
    saved = Saved(out, report, progress, str(entry.get("entry", "")), command, seed, address)
    if saved.report.outcome == "interrupted":
        report.outcome = "running"  # going on now
    if not saved.ended and report.runs and report.runs[-1].status in ("running", "interrupted"):
        saved.interrupted = report.runs.pop()
        saved.progress = _restart(out, moved_from, saved.interrupted, progress)
    return saved


def set_aside(saved: Saved) -> Path | None:
    """Move the interrupted run's files (metrics.jsonl, logs) to ``interrupted-K/`` in its
    folder, so the restart writes fresh ones and nothing recorded is lost."""
    if saved.interrupted is None or saved.progress.resumed is None:
        return None
    kept = saved.out / saved.progress.resumed["kept"]
    move_files(_run_folder(saved.out, saved.interrupted.run), kept)
    return kept


def move_files(folder: Path, kept: Path) -> None:
    """Move a run folder's files (not the earlier interruptions') into ``kept``."""
    kept.mkdir(parents=True, exist_ok=True)
    if folder.is_dir():
        for path in folder.iterdir():
            if not layout.is_interrupted(path):
                shutil.move(str(path), kept / path.name)


def _restart(out: Path, moved_from: Path, run: RunRecord, progress: Progress) -> Progress:
    """The progress that resumes ``run``: its config fixed, from its last checkpoint with the
    reports up to it replayed; else from the checkpoint it started from (the one a
    ``restart: checkpoint`` remedy chose), or fresh."""
    folder = _run_folder(out, run.run)
    metrics = folder / layout.METRICS
    reports = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
    history = _history(metrics)
    # The record lists the checkpoints as their reports arrived; one whose
    # report the history lacks, or whose file a kill cut short, cannot be gone on from.
    usable = sorted(
        (step, path)
        for step, path in ((s, _rebased(p, moved_from, out)) for s, p in run.checkpoints)
        if step < len(history) and _complete(Path(path))
    )
    last = usable[-1] if usable else None
    note = {
        "how": "last_checkpoint" if last else "checkpoint" if progress.resume_from else "fresh",
        "why": INTERRUPTED,
        "interrupted_trial": run.trial,
        "reports_before": reports,
        "kept": str(layout.next_interrupted(folder).relative_to(out)),
        "checkpoint": last[1] if last else progress.resume_from,
        "report": last[0] + 1 if last else None,  # 1-based: the reports replayed
    }
    return Progress(
        next_run=run.run,
        config=dict(run.config),
        search={},
        resume_from=last[1] if last else progress.resume_from,
        evidence=progress.evidence,
        tried=progress.tried,
        spent_seconds=progress.spent_seconds,
        resumed=note,
        continued=Continuation(history[: last[0] + 1], usable) if last else None,
    )


def _complete(folder: Path) -> bool:
    """torch.save writes a zip archive, whose directory comes last: a cut file has none."""
    path = folder / layout.CHECKPOINT
    return path.is_file() and zipfile.is_zipfile(path)


def _rebased(path: str, moved_from: Path, out: Path) -> str:
    """A path recorded inside the output folder, in the folder where it is now."""
    try:
        return str(out / Path(path).relative_to(moved_from))
    except ValueError:
        return path


def _history(metrics: Path) -> list[Metrics]:
    """The reports of a metrics.jsonl, up to the first line a kill cut short."""
    reports: list[Metrics] = []
    if not metrics.is_file():
        return reports
    for line in metrics.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            break
        read = strict_json.metrics_row(row)
        if read is None:
            break
        reports.append(read[1])
    return reports


def _read(out: Path) -> dict[str, Any]:
    if not out.is_dir():
        raise ResumeError(f"{out}: expected a rescue's output folder; no such folder")
    path = out / layout.REPORT_JSON
    if not path.is_file():
        raise ResumeError(f"{out}: expected a rescue's output folder; it has no report.json")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResumeError(f"{path}: expected valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResumeError(f"{path}: expected a JSON object")
    if "sweep" in data:
        raise ResumeError(f"{out}: a sweep's output folder; only a rescue can be resumed")
    if not isinstance(data.get("resume"), dict) or not data["resume"]:
        raise ResumeError(
            f"{path}: expected a `resume` entry (written by a rescue of this version)"
        )
    return data


def _run_folder(out: Path, run: int) -> Path:
    return layout.run_folder(out, run)


# ---------------------------------------------------------------- sweeps


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
        "why": INTERRUPTED_TRIAL,
        "interrupted_trial": trial.trial,
        "reports_before": reports,
        "kept": str(kept.relative_to(out)),
    }
