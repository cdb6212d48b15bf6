"""Scoring rescue on corpus cases: the right outcome is a rescue for a sick case and one healthy
run for a healthy case; a healthy case restarted is a false restart; a supervisor that dies
(a traceback, exit code other than 0/3, or report.json left ``running``) is a crash."""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpuskit.cases import Case
from corpuskit.replay import replay_rescue
from corpuskit.rescue_api import RescueReport


@dataclass
class Scored:
    case: str
    split: str
    expect: str
    family: str
    origin: str
    style: str
    outcome: str
    runs: int = 0
    verdicts: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    reports: int = 0
    seconds: float = 0.0
    summary: str = ""
    crash: str | None = None

    @property
    def right(self) -> bool:
        if self.crash:
            return False
        if self.expect == "sick":
            return self.outcome == "rescued"
        return self.outcome == "healthy" and self.runs == 1

    @property
    def false_restart(self) -> bool:
        return self.expect == "healthy" and self.runs > 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "right": self.right, "false_restart": self.false_restart}


def _score(case: Case, report: RescueReport | None, crash: str | None, **extra: Any) -> Scored:
    base = dict(
        case=case.name,
        split=case.split,
        expect=case.expect,
        family=case.family,
        origin=case.origin,
        style=case.style,
    )
    if report is None:
        return Scored(**base, outcome="crash", crash=crash, **extra)
    verdicts = [r.verdict.signature if r.verdict else "-" for r in report.runs]
    changes = []
    for r in report.runs:
        if r.remedy:
            moved = ", ".join(f"{k} {a}->{b}" for k, (a, b) in r.remedy.get("changes", {}).items())
            changes.append(f"{r.remedy.get('name')}: {moved}")
    if report.outcome == "running" and crash is None:
        crash = "report.json left running"
    return Scored(
        **base,
        outcome=report.outcome,
        runs=len(report.runs),
        verdicts=verdicts,
        changes=changes,
        summary=report.summary,
        crash=crash,
        **extra,
    )


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "random": {"sampler": "random"},  # uniform draws from the same ranges
    "chain_only": {"beyond_chain": False},  # the signature's remedies only
    "no_margin": {"margin": 0.0},  # ranges right up to the values known to fail
}


def score_replay(case: Case, seed: int = 0, variant: str = "default") -> Scored:
    result = replay_rescue(case, seed=seed, search=VARIANTS.get(variant))
    return _score(
        case,
        result.report,
        result.error,
        reports=result.spent.reports,
        seconds=round(result.spent.seconds, 1),
    )


def score_ray(case: Case, seed: int = 0, variant: str = "default") -> Scored:
    """The real command line, as a user runs it, in the case folder."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        if case.script is not None:
            argv = ["rescue", str(case.script), "--config", "cfg.yaml"]
        else:
            assert case.command is not None
            argv = ["rescue", "--command", shlex.join(case.command), "--config", "cfg.yaml"]
        argv += ["--out", str(out), "--seed", str(seed), "--quiet"]
        started = time.monotonic()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        exe = Path(sys.executable).with_name("rescue")
        argv[0] = str(exe) if exe.exists() else "rescue"
        proc = subprocess.run(argv, cwd=case.folder, capture_output=True, text=True, env=env)
        seconds = time.monotonic() - started
        report_file = out / "report.json"
        report = None
        if report_file.is_file():
            report = RescueReport.from_dict(json.loads(report_file.read_text()))
        crash = None
        if proc.returncode not in (0, 3) or "Traceback" in proc.stderr:
            crash = f"exit {proc.returncode}: {proc.stderr[-2000:]}"
        return _score(
            case,
            report,
            crash,
            reports=report.total_reports if report else 0,
            seconds=round(seconds, 1),
        )


def summarize(rows: list[Scored]) -> dict[str, Any]:
    sick = [r for r in rows if r.expect == "sick"]
    healthy = [r for r in rows if r.expect == "healthy"]
    rescued_runs = [r.runs for r in sick if r.right]
    return {
        "cases": len(rows),
        "right": sum(r.right for r in rows),
        "sick_rescued": f"{sum(r.right for r in sick)}/{len(sick)}",
        "healthy_kept": f"{sum(r.right for r in healthy)}/{len(healthy)}",
        "false_restarts": sum(r.false_restart for r in rows),
        "crashes": sum(bool(r.crash) for r in rows),
        "median_runs_to_rescue": statistics.median(rescued_runs) if rescued_runs else None,
        "reports": sum(r.reports for r in rows),
    }
