"""The output folder of a rescue or a sweep, defined once::

    OUTDIR/
      report.json            what was found and done (the records; see rescue.engine.record)
      report.html, plots/    the page, rendered from the records
      study.db               the Optuna study (unless --storage names another)
      ray/EXPERIMENT/run-NNN/  Ray Tune's trial of a run: params, results, checkpoints; one
                             experiment per rescue or sweep (unless ray.storage_path)
      runs/run-NNN/          one run: metrics.jsonl, stdout.log, stderr.log, command.pid
        interrupted-K/       the files of an attempt that was interrupted, kept for resume

Pure names and paths: no Ray, no I/O."""

from __future__ import annotations

import re
from pathlib import Path

REPORT_JSON = "report.json"
PAGE = "report.html"
PLOTS = "plots"
STUDY_DB = "study.db"
RAY = "ray"
RUNS = "runs"
METRICS = "metrics.jsonl"
STDOUT = "stdout.log"
STDERR = "stderr.log"
PID = "command.pid"  # a plain script's process group, while it runs
CHECKPOINT = "checkpoint.pt"  # inside a checkpoint folder
INTERRUPTED = "interrupted-"

_RUN_NAME = re.compile(r"^run-(\d+)$")


def run_name(run: int) -> str:
    """``run-007``: a run's folder, its Ray Tune trial's folder and its plot are named so.

    >>> run_name(7)
    'run-007'
    """
    return f"run-{run:03d}"


def run_number(name: str) -> int | None:
    """The run a folder named by :func:`run_name` is for, else None.

    >>> run_number("run-012"), run_number("notes")
    (12, None)
    """
    match = _RUN_NAME.match(name)
    return int(match[1]) if match else None


def run_folder(out: Path, run: int) -> Path:
    return Path(out) / RUNS / run_name(run)


def trial_folders(out: Path, run: int) -> list[Path]:
    """Ray Tune's folders of a run's trials (more than one when it was run again), oldest
    experiment first."""
    return sorted((Path(out) / RAY).glob(f"*/{run_name(run)}"))


def next_interrupted(folder: Path) -> Path:
    """Where a run folder's files go when its run was interrupted: ``interrupted-K/``, K one
    more than the interruptions kept there already."""
    earlier = len(list(folder.glob(f"{INTERRUPTED}*"))) if folder.is_dir() else 0
    return folder / f"{INTERRUPTED}{earlier + 1}"


def is_interrupted(path: Path) -> bool:
    return path.name.startswith(INTERRUPTED)
