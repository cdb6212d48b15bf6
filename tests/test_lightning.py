"""rescue.integrations.lightning: a Lightning Trainer with RescueCallback is rescued end to end,
each logged metric reaching rescue at its own cadence, and the stop ending the fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rescue.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lightning_divergence"

pytestmark = pytest.mark.integration


def test_a_diverging_lightning_module_is_rescued_through_its_callback(local_ray, tmp_path):
    out = tmp_path / "out"
    cfg = EXAMPLE / "cfg.yaml"
    code = main([str(EXAMPLE / "train.py"), "--config", str(cfg), "--out", str(out), "-q"])
    report = json.loads((out / "report.json").read_text())
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
