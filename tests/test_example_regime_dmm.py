"""The regime_dmm example end to end, under real Ray Tune and Optuna, at a reduced size."""

from pathlib import Path

import pytest

from cli_runs import run_rescue

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "regime_dmm"


def test_the_regime_dmm_example_is_rescued_from_class_collapse_by_input_normalisation(
    tmp_path: Path,
) -> None:
    cfg = (EXAMPLE / "cfg.yaml").read_text()
    reduced = cfg.replace("steps: 800 ", "steps: 400 ")  # 80 reports instead of 160
    assert reduced.count("steps: 400 ") == 1
    code, report, _ = run_rescue(tmp_path, reduced, str(EXAMPLE / "train.py"), ["-q"])
    assert code == 0 and report["outcome"] == "rescued"
    first, last = report["runs"][0], report["runs"][-1]
    # Stopped at about report 31: a collapse must last 20 reports after a grace of 10.
    assert first["status"] == "stopped" and first["reports"] < 40
    # A collapsed classifier's accuracy is also frozen: a silent_metric warning may come first.
    (finding,) = [f for f in first["findings"] if f["action"] == "restart"]
    assert finding["signature"] == "class_collapse" and finding["metric"] == "regime_usage"
    assert max(finding["evidence"]["usage"]) >= 0.95
    assert first["remedy"]["name"] == "normalization_swap"
    assert first["remedy"]["changes"]["input_norm"] == ["none", "running"]
    assert len(report["runs"]) == 2 and last["config"]["input_norm"] == "running"
    assert last["status"] == "completed" and last["met_success"]
    final = last["final_metrics"]
    assert final["regime_acc"] > 0.7
    assert min(final["regime_usage"]) > 0.02  # every regime in use
