"""rescue.integrations.transformers: the Hugging Face Trainer's log events reach rescue with the
trainer's step, a stop from rescue ends the training through should_training_stop, and the
example's learning rate, far too high without warm-up, is rescued end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_runs import rescue_example

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hf_no_warmup"


def test_a_real_trainer_reports_its_log_events_by_hand(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("hf_example", EXAMPLE / "train.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.train({**example.DEFAULTS, "lr": 0.003, "steps": 30})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    # One line a log event: every 5 steps a training loss, an evaluation every 25 and at the
    # last step; the summary the trainer logs at its end is not one.
    train = [line.rsplit("| step ", 1)[1] for line in lines if "| loss " in line]
    evaluations = [line.rsplit("| step ", 1)[1] for line in lines if "| eval_loss " in line]
    assert train == ["5", "10", "15", "20", "25", "30"] and evaluations == ["25", "30"]
    assert len(lines) == 8 and "train_runtime" not in "".join(lines)


@pytest.mark.integration
def test_a_trainer_without_warm_up_at_a_far_too_high_rate_is_rescued(local_ray, tmp_path):
    code, report, _ = rescue_example(tmp_path, "hf_no_warmup")
    assert code == 0 and report["outcome"] == "rescued", report["summary"]
    runs = report["runs"]
    assert not runs[0]["met_success"] and runs[-1]["met_success"]
    # Some run found the learning rate too high, and the fix took a smaller one than shipped.
    assert any(r["evidence"]["side"] == "too_high" for r in runs[:-1])
    assert runs[-1]["config"]["lr"] < 0.3


@pytest.mark.integration
def test_a_stop_from_rescue_ends_the_trainer_through_should_training_stop(local_ray, tmp_path):
    cfg = yaml.safe_load((EXAMPLE / "cfg.yaml").read_text())
    cfg["params"].update(lr=0.003, steps=5000)  # healthy, and far longer than its budget
    cfg["budget"] = {"restarts": 0, "seconds": 10}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, report, out = rescue_example(tmp_path, "hf_no_warmup", path)
    run = report["runs"][0]
    assert code == 3 and run["status"] == "stopped" and run["findings"] == []
    assert "wall-clock budget" in report["summary"]
    assert 0 < run["reports"] < 5000 // 5  # it reported, and it ended long before its length
    rows = [
        json.loads(line)["metrics"] for line in (out / "runs" / "run-000" / "metrics.jsonl").open()
    ]
    assert [r["step"] for r in rows if "loss" in r][:3] == [5.0, 10.0, 15.0]
