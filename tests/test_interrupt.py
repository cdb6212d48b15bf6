"""Ctrl-C and SIGTERM to a real supervisor: the run in flight is recorded as interrupted
(never completed or healthy), the exit code says which signal, and the folder resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from process_kill import kill_all

SCRIPT = Path(__file__).parent / "scripts" / "checkpointed_sgd.py"
CLI = [sys.executable, "-m", "rescue.cli.main"]
ENV = {**os.environ, "RAY_CHDIR_TO_TRIAL_DIR": "0"}
PACED = """\
params: {lr: 0.05, epochs: 20, checkpoint_every: 5, epoch_seconds: 0.15, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
budget: {restarts: 1}
"""

pytestmark = pytest.mark.integration


def _signal_during(tmp_path: Path, signals: list[int], reports: int = 3):
    """Start a real rescue, send ``signals`` to the supervisor once its run has made
    ``reports`` reports; returns (exit code, stderr, report.json, out)."""
    cfg, out = tmp_path / "cfg.yaml", tmp_path / "out"
    cfg.write_text(PACED)
    metrics = out / "runs" / "run-000" / "metrics.jsonl"
    proc = subprocess.Popen(
        [*CLI, str(SCRIPT), "--config", str(cfg), "--out", str(out), "-q"],
        start_new_session=True,
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = time.monotonic()
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= reports):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() - started < 300, "the run never reported"
            time.sleep(0.05)
        for sig in signals:
            os.kill(proc.pid, sig)  # the supervisor only, as a scheduler's signal would be
            time.sleep(0.2)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            kill_all(proc)
    return proc.returncode, err, json.loads((out / "report.json").read_text()), out


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_is_an_interruption_and_the_folder_resumes_to_the_end(tmp_path, sig, code):
    returncode, err, report, out = _signal_during(tmp_path, [sig])
    assert returncode == code
    assert report["outcome"] == "interrupted"
    run = report["runs"][0]
    assert run["status"] == "interrupted" and not run["met_success"]
    assert run["findings"] == [] and report["final_config"] is None
    assert err.strip().splitlines()[-1].endswith(f"rescue resume {out} ({out})")
    study = optuna.load_study(study_name=report["study"], storage=report["storage"])
    trial = study.trials[0]
    assert trial.state == TrialState.FAIL and "interrupted" in trial.user_attrs
    if sig == signal.SIGTERM:
        return  # the folder is the same after either signal: resumed once, below, for SIGINT

    resumed = subprocess.run(
        [*CLI, "resume", str(out), "-q"], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((out / "report.json").read_text())
    assert after["outcome"] == "healthy" and len(after["runs"]) == 1
    assert after["runs"][0]["status"] == "completed" and after["runs"][0]["reports"] == 20
    states = [
        t.state
        for t in optuna.load_study(study_name=report["study"], storage=report["storage"]).trials
    ]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]


def test_a_second_ctrl_c_stops_at_once_and_leaves_a_resumable_folder(tmp_path):
    returncode, _, report, out = _signal_during(tmp_path, [signal.SIGINT, signal.SIGINT])
    assert returncode != 0
    assert report["outcome"] in ("running", "interrupted")
    assert report["runs"][0]["status"] in ("running", "interrupted")
    resumed = subprocess.run(
        [*CLI, "resume", str(out), "-q"], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "report.json").read_text())["outcome"] == "healthy"


def test_ctrl_c_stops_a_sweep_as_interrupted_and_the_folder_resumes(tmp_path):
    cfg, out = tmp_path / "cfg.yaml", tmp_path / "out"
    cfg.write_text(PACED)
    metrics = out / "runs" / "run-000" / "metrics.jsonl"
    argv = ["sweep", str(SCRIPT), "--config", str(cfg), "--out", str(out), "--trials", "1"]
    proc = subprocess.Popen(
        [*CLI, *argv, "-q"], start_new_session=True, env=ENV, stderr=subprocess.PIPE, text=True
    )
    try:
        started = time.monotonic()
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() - started < 300, "the trial never reported"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            kill_all(proc)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].endswith(f"rescue resume {out}")
    report = json.loads((out / "report.json").read_text())
    assert report["outcome"] == "interrupted"
    assert report["runs"][0]["outcome"] == "running"  # never called healthy or completed
    study = optuna.load_study(study_name=report["study"], storage=report["storage"])
    assert study.trials[0].state == TrialState.FAIL and "interrupted" in study.trials[0].user_attrs

    resumed = subprocess.run(
        [*CLI, "resume", str(out), "-q"], env=ENV, capture_output=True, text=True, timeout=600
    )
    after = json.loads((out / "report.json").read_text())
    # The sampled learning rates decide whether a trial meets the target; the sweep ends.
    assert resumed.returncode == (0 if after["outcome"] == "healthy" else 3), resumed.stderr
    assert after["outcome"] in ("healthy", "not_found") and len(after["runs"]) == 1
    assert all(r["outcome"] != "running" for r in after["runs"])
