"""command.tensorboard: an unmodified script that logs with SummaryWriter is rescued from the
scalars in its event files, read as they are written; a tag that never appears is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_runs import rescue_example

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tensorboard_regression"

pytestmark = pytest.mark.integration


def _cfg(tmp_path: Path, **tags: str) -> Path:
    cfg = yaml.safe_load((EXAMPLE / "cfg.yaml").read_text())
    cfg["params"]["runs-dir"] = str(tmp_path / "runs")
    if tags:
        cfg["command"]["tensorboard"]["tags"] = tags
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_script_logging_to_tensorboard_is_rescued_from_its_event_files(local_ray, tmp_path):
    code, report, out = rescue_example(tmp_path, "tensorboard_regression", _cfg(tmp_path))
    assert code == 0 and report["outcome"] == "rescued", report["summary"]
    first, last = report["runs"][0], report["runs"][-1]
    assert first["findings"][0]["signature"] in {"divergence", "explosion", "non_finite"}
    assert first["config"]["lr"] == 0.5 and last["config"]["lr"] < 0.2
    assert last["met_success"]
    rows = [json.loads(line) for line in (out / "runs" / "run-001" / "metrics.jsonl").open()]
    # One report per step the script logged at (every 10th), with the script's own step;
    # the held-out loss (every 50th step) joins the training loss of its step.
    assert [r["metrics"]["step"] for r in rows] == [float(s) for s in range(0, 600, 10)]
    assert [r["metrics"]["step"] for r in rows if "val_loss" in r["metrics"]] == [
        float(s) for s in range(0, 600, 50)
    ]
    assert len(list((tmp_path / "runs").iterdir())) == len(report["runs"])  # its own files


def test_a_tag_the_script_never_writes_is_a_configuration_finding(local_ray, tmp_path):
    cfg = _cfg(tmp_path, loss="train/los", val_loss="eval/los")  # misspelt
    code, report, out = rescue_example(tmp_path, "tensorboard_regression", cfg)
    assert code == 3 and len(report["runs"]) == 1  # never restarted, never healthy
    finding = report["runs"][0]["findings"][0]
    assert finding["signature"] == "misconfigured"
    assert "train/los" in finding["reason"] and "command.tensorboard.logdir" in finding["reason"]
    stderr = (out / "runs" / "run-000" / "stderr.log").read_text()
    assert "tag(s) eval/los, train/los never appeared in the 1 event file(s)" in stderr
