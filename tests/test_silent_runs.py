"""Runs that do not say what the cfg needs get a clear verdict, never a restart and never
"healthy": under real Ray Tune, with the real command line."""

import pytest

from cli_runs import DIVERGING, SCRIPTS, run_rescue
from rescue.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]

CFG = """\
params: {lr: 0.05, steps: 300}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
budget: {restarts: 3}
"""


def test_a_train_without_a_config_argument_runs_as_a_plain_script(tmp_path):
    # train() takes no argument and argparse reads sys.argv at import: as a train(config)
    # entry it would crash in the worker; as a plain script its flags are the params.
    code, report, out = run_rescue(tmp_path, CFG, "argparse_main.py", ["-q"])
    assert code == 0 and report["outcome"] == "healthy", report["summary"]
    assert report["runs"][0]["reports"] == 60
    assert (out / "runs" / "run-000" / "stdout.log").read_text().count('"loss"') == 60


def test_a_run_that_never_reports_is_misconfigured_not_healthy(tmp_path):
    code, report, out = run_rescue(tmp_path, CFG, "unreported.py", ["-q"])
    assert code == 3 and report["outcome"] == "not_rescued"
    assert len(report["runs"]) == 1  # no restart can help
    finding = report["runs"][0]["findings"][0]
    assert finding["signature"] == "misconfigured"
    assert "rescue.report was never called" in report["summary"]
    # What it printed is kept, as for a plain script.
    assert "final loss" in (out / "runs" / "run-000" / "stdout.log").read_text()


def test_a_metric_pattern_that_never_matches_names_itself_and_the_log(tmp_path):
    cfg = CFG + "command:\n  metrics: {loss: 'Loss: (\\S+)'}\n"  # Loss: (\S+) in the file
    code, report, out = run_rescue(tmp_path, cfg, "argparse_main.py", ["-q"])
    assert code == 3 and len(report["runs"]) == 1
    summary = report["summary"]
    assert summary.startswith("misconfigured: no line of") and "stdout.log" in summary
    assert "loss: 'Loss: (\\S+)'" in summary


def test_a_success_metric_never_reported_is_said_after_the_first_run(tmp_path):
    cfg = CFG.replace("loss: {below: 0.05}", "val_loss: {below: 0.05}")
    code, report, _ = run_rescue(tmp_path, cfg, "argparse_main.py", ["-q"])
    assert code == 3 and len(report["runs"]) == 1
    assert "val_loss never reported (reported: loss)" in report["summary"]


def test_an_argparse_exit_inside_train_is_a_crash_with_its_message(tmp_path):
    cfg = CFG.replace("params: {lr: 0.05, steps: 300}", "params: {lr: 0.05, parse_flags: true}")
    code, report, out = run_rescue(tmp_path, cfg, "unreported.py", ["-q"])
    assert code == 3
    finding = report["runs"][0]["findings"][0]
    assert finding["signature"] == "crash"
    assert "sys.exit(2)" in finding["reason"] or "sys.exit(2)" in finding["evidence"]["traceback"]
    assert "the following arguments are required: --lr" in finding["evidence"]["traceback"]
    assert "--lr" in (out / "runs" / "run-000" / "stderr.log").read_text()


def test_a_run_no_node_can_hold_is_bad_input_and_the_folder_starts_again_once_fixed(tmp_path):
    cfg = DIVERGING + "ray: {cpus_per_run: 1000}\n"
    (tmp_path / "cfg.yaml").write_text(cfg)
    out = tmp_path / "out"
    argv = [str(SCRIPTS / "sgd_regression.py"), "--config", str(tmp_path / "cfg.yaml")]
    assert main([*argv, "--out", str(out), "-q"]) == 2  # at once, not waiting forever
    assert not (out / "report.json").exists()
    (tmp_path / "cfg.yaml").write_text(DIVERGING.replace("lr: 0.9", "lr: 0.05"))
    assert main([*argv, "--out", str(out), "-q"]) == 0  # the empty study it left is taken over


def test_the_wall_clock_budget_stops_a_run_in_flight_without_a_verdict_on_it(tmp_path):
    cfg = (
        "params: {lr: 0.05, epochs: 100, checkpoint_every: 50, epoch_seconds: 0.5, seed: 0}\n"
        "knobs:\n  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}\n"
        "success:\n  loss: {below: 0.05}\n"
        "budget: {restarts: 3, seconds: 12}\n"
    )
    code, report, _ = run_rescue(tmp_path, cfg, "checkpointed_sgd.py", ["-q"])
    assert code == 3 and report["outcome"] == "not_rescued"
    (run,) = report["runs"]  # 100 epochs of 0.5 s would take 50 s
    assert run["status"] == "stopped" and 0 < run["reports"] < 100
    assert run["findings"] == [] and "wall-clock budget" in run["notes"][0]
    assert report["summary"].startswith("the wall-clock budget of 12 s is spent (run 0 was")
