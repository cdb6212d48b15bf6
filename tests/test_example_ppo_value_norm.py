"""The ppo_value_norm example (seed 004) end to end under real Ray Tune, Optuna and torch."""

from pathlib import Path

import pytest

from cli_runs import run_rescue

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ppo_value_norm"


def test_the_ppo_example_is_rescued_from_exploding_value_loss_by_running_normalisation(
    tmp_path: Path,
) -> None:
    cfg = (EXAMPLE / "cfg.yaml").read_text()
    reduced = cfg.replace("iterations: 120 ", "iterations: 80 ")  # 40 reports instead of 60
    assert "iterations: 80 " in reduced and "iterations: 120" not in reduced
    code, report, _ = run_rescue(tmp_path, reduced, str(EXAMPLE / "train.py"), ["-q"])
    assert code == 0 and report["outcome"] == "rescued"
    first, last = report["runs"][0], report["runs"][-1]
    finding = first["findings"][0]
    assert finding["signature"] == "explosion" and finding["metric"] == "value_loss"
    assert first["status"] == "stopped" and first["reports"] < 10
    assert first["remedy"]["name"] == "normalization_swap"
    assert first["remedy"]["changes"]["return_norm"] == ["none", "running"]
    assert len(report["runs"]) == 2 and last["status"] == "completed" and last["met_success"]
    assert last["config"]["return_norm"] == "running"
    assert last["final_metrics"]["f1"] > 0.6
    assert last["final_metrics"]["value_loss"] < 0.5
