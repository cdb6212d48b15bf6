"""rescue.integrations.lightning: a Lightning Trainer with RescueCallback is rescued end to end,
each logged metric reaching rescue at its own cadence, and the stop ending the fit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cli_runs import rescue_example

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lightning_divergence"

pytestmark = pytest.mark.integration


def test_a_diverging_lightning_module_is_rescued_through_its_callback(local_ray, tmp_path):
    code, report, out = rescue_example(tmp_path, "lightning_divergence")
    assert code == 0 and report["outcome"] == "rescued", report["summary"]
    first, last = report["runs"][0], report["runs"][-1]
    assert first["status"] == "stopped"  # the stop ended trainer.fit
    assert first["findings"][0]["signature"] in {"divergence", "explosion", "non_finite"}
    assert first["findings"][0]["metric"] == "train_loss"
    assert first["reports"] < 8 * 33  # stopped long before its 8 epochs
    assert last["status"] == "completed" and last["met_success"] and last["config"]["lr"] < 0.3
    rows = [
        json.loads(line)["metrics"] for line in (out / "runs" / "run-001" / "metrics.jsonl").open()
    ]
    # 32 training batches an epoch, one validation after each of the 8 epochs: each metric at
    # its own cadence, the validation loss never repeated between validations.
    assert sum("train_loss" in r for r in rows) == 8 * 32
    assert sum("val_loss" in r for r in rows) == 8
    assert all(len(r) == 1 for r in rows)


@pytest.mark.integration
def test_a_killed_lightning_run_resumes_from_lightnings_own_checkpoint(tmp_path):
    """RescueCallback(checkpoint=True): a checkpoint by trainer.save_checkpoint at each
    validation; after a SIGKILL, `rescue resume` goes on from the last one, and the run's
    reports are neither lost nor repeated."""
    from test_resume import CLI, ENV, _kill_during

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text((EXAMPLE / "cfg.yaml").read_text().replace("lr: 0.6", "lr: 0.05"))
    out = tmp_path / "out"
    metrics = out / "runs" / "run-000" / "metrics.jsonl"
    _kill_during(str(EXAMPLE / "train.py"), cfg, out, metrics, reports=3 * 33 + 5)
    before = json.loads((out / "report.json").read_text())["runs"][0]
    assert before["status"] == "running" and len(before["checkpoints"]) >= 3
    resumed = subprocess.run(
        [*CLI, "resume", str(out)], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((out / "report.json").read_text())
    run = report["runs"][0]
    assert report["outcome"] == "healthy" and run["status"] == "completed"
    assert run["resumed"]["how"] == "last_checkpoint"
    # One checkpoint with each validation, the epoch's 33rd report; the resume replayed the
    # reports up to the last one before the kill and Lightning went on after it.
    assert [step for step, _ in run["checkpoints"]] == [33 * k - 1 for k in range(1, 9)]
    assert run["resumed"]["report"] % 33 == 0 and run["resumed"]["report"] >= 3 * 33
    # Lightning went on at the epoch after the checkpoint's validation: 8 epochs in all.
    rows = [json.loads(line)["metrics"] for line in metrics.open()]
    assert sum("train_loss" in r for r in rows) == 8 * 32
    assert sum("val_loss" in r for r in rows) == 8
    assert run["reports"] == 8 * 33
