"""The dqn_dead_head example end to end under real Ray Tune, Optuna and torch, at reduced size."""

from pathlib import Path

import pytest

from cli_runs import run_rescue

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dqn_dead_head"


def test_the_dead_discrete_head_is_reinitialised_and_the_zero_grad_norm_only_warned(tmp_path):
    reduced = (EXAMPLE / "cfg.yaml").read_text().replace("steps: 3000 ", "steps: 1200 ")
    assert reduced.count("steps: 1200 ") == 1  # 24 reports instead of 60
    code, report, _ = run_rescue(tmp_path, reduced, str(EXAMPLE / "train.py"), ["-q"])
    assert code == 0 and report["outcome"] == "rescued"

    first, last = report["runs"][0], report["runs"][-1]
    assert first["status"] == "stopped" and first["reports"] < 24
    assert first["findings"][0]["signature"] in {"dead_output", "opposing_losses"}
    assert first["findings"][0]["action"] == "restart"
    assert first["remedy"]["name"] == "reinit"
    old, new = first["remedy"]["changes"]["head_init"]
    assert old == "zeros" and new in {"small_uniform", "default", "xavier"}

    # grad_norm, read after zero_grad, is 0 throughout: a warning, never a restart.
    findings = [f for run in report["runs"] for f in run["findings"]]
    assert ("silent_metric", "grad_norm", "warn") in {
        (f["signature"], f["metric"], f["action"]) for f in findings
    }
    assert all(f["action"] == "warn" for f in findings if f["signature"] == "silent_metric")
    assert all((run["remedy"] or {}).get("for") != "silent_metric" for run in report["runs"])

    assert last["status"] == "completed" and last["met_success"]
    assert last["config"]["head_init"] == new
    assert last["final_metrics"]["discrete_agree"] > 0.6
