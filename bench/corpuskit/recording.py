"""Direct runs of a case at given params, outside rescue: the ground truth, and the recorded
streams the replay evaluation feeds to the supervisor. Training is seeded, so a run's reports
depend only on the program and its params; recordings are cached under
``bench/corpus/.cache/`` by a hash of both."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from corpuskit.cases import ROOT, Case
from corpuskit.rescue_api import Metrics, OutputParser, build_argv

CACHE = ROOT / ".cache"
TIMEOUT = 600.0


@dataclass
class Recording:
    """One whole run: every report, and how it ended."""

    reports: list[Metrics]
    status: Literal["completed", "crashed", "timeout"]
    error: str | None = None
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["reports"] = [{k: _encode(v) for k, v in r.items()} for r in self.reports]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recording:
        data = dict(data)
        data["reports"] = [{k: _decode(v) for k, v in r.items()} for r in data["reports"]]
        return cls(**data)

    def truncated(self, length: int | None) -> Recording:
        """As rescue sees it with ``budget.reports_per_run``: the run ends there."""
        if length is None or len(self.reports) <= length:
            return self
        return Recording(self.reports[:length], "completed", None, self.seconds, self.params)


def _encode(value: Any) -> Any:
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value if math.isfinite(value) else str(value)


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return float(value)


def cache_key(case: Case, params: dict[str, Any]) -> str:
    digest = hashlib.sha1(case.program().read_bytes())
    if case.command is not None:
        spec = [case.command, case.cfg.command.args, case.cfg.command.metrics]
        digest.update(json.dumps(spec, sort_keys=True, default=str).encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def record(case: Case, params: dict[str, Any], use_cache: bool = True) -> Recording:
    """The whole run of ``case`` at ``params`` (cached)."""
    path = CACHE / case.name / f"{cache_key(case, params)}.json"
    if use_cache and path.is_file():
        return Recording.from_json(json.loads(path.read_text()))
    started = time.monotonic()
    recording = _run_train(case, params) if case.script is not None else _run_command(case, params)
    recording.seconds = round(time.monotonic() - started, 2)
    recording.params = params
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(recording.to_json()))
    os.replace(tmp, path)
    return recording


def _env() -> dict[str, str]:
    bench = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (bench, os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _run_train(case: Case, params: dict[str, Any]) -> Recording:
    assert case.script is not None
    worker = Path(__file__).with_name("record_worker.py")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "reports.jsonl"
        argv = [sys.executable, str(worker), str(case.script), json.dumps(params), str(out)]
        try:
            proc = subprocess.run(
                argv,
                cwd=case.folder,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return Recording(_read_jsonl(out), "timeout", f"no end after {TIMEOUT:g} s")
        reports = _read_jsonl(out)
        error_file = Path(str(out) + ".error")
        if proc.returncode != 0:
            error = error_file.read_text() if error_file.is_file() else proc.stderr[-4000:]
            return Recording(reports, "crashed", error)
        return Recording(reports, "completed")


def _read_jsonl(path: Path) -> list[Metrics]:
    if not path.is_file():
        return []
    reports = []
    for line in path.read_text().splitlines():
        if line.strip():
            reports.append({k: _decode(v) for k, v in json.loads(line).items()})
    return reports


def _run_command(case: Case, params: dict[str, Any]) -> Recording:
    assert case.command is not None
    argv = build_argv(case.command, params, case.cfg.command.args)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    parser = OutputParser(case.cfg.command.metrics)
    try:
        proc = subprocess.run(
            argv, cwd=case.folder, env=_env(), capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Recording(_parse(parser, out), "timeout", f"no end after {TIMEOUT:g} s")
    reports = _parse(parser, proc.stdout)
    if proc.returncode != 0:
        tail = "".join(deque(proc.stderr.splitlines(keepends=True), maxlen=20))
        return Recording(reports, "crashed", f"exit code {proc.returncode}\n{tail}")
    return Recording(reports, "completed")


def _parse(parser: OutputParser, text: str) -> list[Metrics]:
    return [m for m in (parser.parse(line) for line in text.splitlines(keepends=True)) if m]


def met_success(case: Case, recording: Recording) -> bool:
    """As the supervisor judges a finished run: completed, and every target met by the last
    reported value of its metric."""
    rec = recording.truncated(case.cfg.budget.reports_per_run)
    if rec.status != "completed":
        return False
    for name, target in case.cfg.success.items():
        values = [r[name] for r in rec.reports if name in r and not isinstance(r[name], list)]
        if not values or not target.met_by(values[-1]):
            return False
    return True


def final_values(case: Case, recording: Recording) -> dict[str, float | None]:
    rec = recording.truncated(case.cfg.budget.reports_per_run)
    out: dict[str, float | None] = {}
    for name in case.cfg.success:
        values = [r[name] for r in rec.reports if name in r and not isinstance(r[name], list)]
        out[name] = values[-1] if values else None
    return out
