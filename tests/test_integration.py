"""End to end under real Ray Tune and real Optuna, on real (small) torch training."""

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import optuna
import pytest

from cli_runs import DIVERGING, judged_in_worker, run_rescue
from rescue.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]


def test_a_diverging_run_is_stopped_early_and_rescued_by_a_learning_rate_cut(tmp_path):
    # A step takes 10 ms, as a bigger model's would: reports travel in batches of at most
    # 0.25 s, so a run much faster than that would end before any stop could reach it.
    timing = tmp_path / "timing.txt"  # each run notes its process when it starts
    slowed = DIVERGING.replace("seed: 0}", f"seed: 0, step_seconds: 0.01, timing: '{timing}'}}")
    code, report, out = run_rescue(tmp_path, slowed, extra=["--quiet"])
    assert code == 0
    assert report["outcome"] == "rescued"
    first, last = report["runs"][0], report["runs"][-1]
    assert first["status"] == "stopped"
    assert first["findings"][0]["signature"] in {"non_finite", "explosion", "divergence"}
    # Stopped within a few reports of the finding (a report every 50 ms, batches of at most
    # 0.25 s), far before its 60 reports.
    assert first["reports"] <= first["findings"][0]["step"] + 15 < 60
    assert first["remedy"]["name"] == "lr_cut"
    old, new = first["remedy"]["changes"]["lr"]
    assert old == 0.9 and 0.009 <= new <= 0.45
    assert last["status"] == "completed" and last["met_success"]
    assert last["final_metrics"]["loss"] < 0.05
    assert report["final_config"]["lr"] == last["config"]["lr"]
    # The run was judged in its worker: the verdict is the one its worker sent.
    found, _ = judged_in_worker(out, 0)
    assert found and found[0]["signature"] == first["findings"][0]["signature"]
    assert found[0]["step"] == first["findings"][0]["step"]
    for run in report["runs"]:  # every report reached the supervisor and was kept
        lines = (out / "runs" / f"run-{run['run']:03d}" / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == run["reports"]

    study = optuna.load_study(study_name=report["study"], storage=report["storage"])
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.PRUNED
    assert states[-1] == optuna.trial.TrialState.COMPLETE
    assert study.trials[0].user_attrs["remedy"]["name"] == "lr_cut"
    assert study.trials[0].intermediate_values  # the stream, as Optuna sees it

    # The runs were the trials of one Ray Tune experiment, in one reused worker process.
    trials = sorted((out / "ray").glob("*/run-*"))
    assert [t.name for t in trials] == [f"run-{r['run']:03d}" for r in report["runs"]]
    assert len({t.parent for t in trials}) == 1
    starts = [line.split()[0] for line in timing.read_text().splitlines() if " start " in line]
    assert len(starts) == len(report["runs"]) and len({s.split(".")[0] for s in starts}) == 1


def test_a_healthy_first_run_is_left_alone(tmp_path):
    code, report, _ = run_rescue(tmp_path, DIVERGING.replace("lr: 0.9", "lr: 0.05"), extra=["-q"])
    assert code == 0 and report["outcome"] == "healthy"
    assert len(report["runs"]) == 1 and report["runs"][0]["findings"] == []


def test_a_crash_is_a_finding_with_its_traceback_not_a_supervisor_crash(tmp_path):
    cfg = DIVERGING.replace("lr: 0.9, steps: 300", "lr: 0.05, steps: 300, crash_at: 40")
    code, report, _ = run_rescue(tmp_path, cfg, extra=["-q"])
    assert code == 3 and report["outcome"] == "not_rescued"
    run = report["runs"][0]
    assert run["status"] == "crashed"
    assert run["reports"] == 9  # reports made before the crash are kept
    finding = run["findings"][0]
    assert finding["signature"] == "crash"
    assert "simulated data-loader failure at step 40" in finding["reason"]
    assert "sgd_regression.py" in finding["evidence"]["traceback"]
    assert "cannot remedy crash" in report["summary"] or "no remedy for crash" in report["summary"]


def test_with_no_knob_for_the_remedies_the_declared_knobs_are_tried_then_it_says_why(tmp_path):
    # The learning rate explodes the run, but only init is declared: rescue tries the one
    # other choice init has (it cannot cure this), then says what it could not move.
    cfg = """\
params: {lr: 0.9, steps: 300, seed: 0, init: default}
knobs:
  init: {role: init, choices: [default, zeros]}
success:
  loss: {below: 0.05}
"""
    code, report, _ = run_rescue(tmp_path, cfg, extra=["-q"])
    assert code == 3 and report["outcome"] == "not_rescued"
    assert [r["config"]["init"] for r in report["runs"]] == ["default", "zeros"]
    assert report["runs"][0]["remedy"]["name"] == "reinit"
    assert "no knob with role learning_rate" in report["summary"]
    assert "init has no value left" in report["summary"]


def test_a_run_that_stops_reporting_is_stopped_as_a_stall_and_retried(tmp_path):
    policy = tmp_path / "impatient.yaml"
    policy.write_text("extends: default\nsignatures:\n  stall:\n    params: {seconds: 10}\n")
    marker = tmp_path / "hung-once"
    cfg = DIVERGING.replace("lr: 0.9", f"lr: 0.05, hang_once: '{marker}'") + f"policy: {policy}\n"
    started = time.monotonic()
    code, report, _ = run_rescue(tmp_path, cfg, extra=["-q"])
    assert time.monotonic() - started < 120  # the hour-long hang was cut short
    assert code == 0 and report["outcome"] == "rescued"
    hung, retried = report["runs"]
    # Reports at steps 0, 5, ..., 100, then silence.
    assert hung["status"] == "stopped" and hung["reports"] == 21
    finding = hung["findings"][0]
    assert finding["signature"] == "stall"
    assert finding["evidence"]["seconds_without_report"] >= 10
    assert hung["remedy"]["name"] == "retry"
    assert retried["config"] == hung["config"] and retried["status"] == "completed"


def test_ray_tune_report_called_directly_also_works(tmp_path):
    code, report, _ = run_rescue(
        tmp_path,
        DIVERGING.replace("lr: 0.9", "lr: 0.05"),
        script="tune_native.py",
        extra=["-q", "--entry", "fit"],
    )
    assert code == 0 and report["outcome"] == "healthy"
    assert report["runs"][0]["reports"] == 30


def test_the_lstm_example_is_rescued_from_divergence_by_a_learning_rate_cut(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "lstm_divergence"
    out = tmp_path / "out"
    code = main(
        [str(example / "train.py"), "--config", str(example / "cfg.yaml"), "--out", str(out), "-q"]
    )
    report = json.loads((out / "report.json").read_text())
    assert code == 0 and report["outcome"] == "rescued"
    first = report["runs"][0]
    assert first["findings"][0]["signature"] == "divergence"
    assert first["status"] == "stopped"  # diagnosed, not run to its end
    old, new = first["remedy"]["changes"]["lr"]
    assert old == 1.5 and new < 0.75
    final = report["runs"][-1]["final_metrics"]
    assert final["train_mse"] < 0.01 and final["test_mse"] < 0.015


def test_the_nk_policy_example_is_rescued_by_raising_the_neglected_loss_weight(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "nk_policy"
    cfg = (example / "cfg.yaml").read_text()
    reduced = cfg.replace("iterations: 2000 ", "iterations: 1200 ")
    reduced = reduced.replace("lr: 0.02 ", "lr: 0.03 ")
    assert reduced.count("1200") == 1 and "lr: 0.03 " in reduced
    code, report, _ = run_rescue(tmp_path, reduced, script=str(example / "train.py"), extra=["-q"])
    assert code == 0 and report["outcome"] == "rescued"
    first, last = report["runs"][0], report["runs"][-1]
    assert first["findings"][0]["signature"] == "neglected_loss"
    assert first["findings"][0]["metric"] == "val_nkpc_loss"
    assert first["reports"] < 30 and first["remedy"]["name"] == "loss_weight_raise"
    old, new = first["remedy"]["changes"]["lam_pi"]
    assert old == 0.1 and 0.2 <= new <= 2.0
    assert last["final_metrics"]["policy_error"] < 0.05
    assert last["final_metrics"]["val_nkpc_loss"] < 0.0008


PLAIN = """\
params: {lr: 0.9, steps: 300, helper-tag: HELPER, step-seconds: 0.01}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
command:
  args: ["--lr", "{lr}", "--steps", "{steps}", "--helper-tag", "{helper-tag}",
         "--step-seconds", "{step-seconds}"]
  metrics: {loss: 'Loss: (\\S+)'}
success:
  loss: {below: 0.05}
budget: {restarts: 3}
"""


def _processes_with(tag: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="ignore")
        except OSError:
            continue
        if proc.name.isdigit() and tag in cmdline:
            found.append(int(proc.name))
    return found


def test_a_plain_script_is_rescued_by_changing_its_flags_and_stopped_as_a_whole(tmp_path):
    tag = f"rescue-test-helper-{os.getpid()}"
    code, report, out = run_rescue(tmp_path, PLAIN.replace("HELPER", tag), script="plain_sgd.py")
    assert code == 0 and report["outcome"] == "rescued"
    first, last = report["runs"][0], report["runs"][-1]
    assert first["status"] == "stopped"
    assert first["reports"] <= first["findings"][0]["step"] + 15 < 60  # stopped early
    assert first["findings"][0]["signature"] in {"non_finite", "explosion", "divergence"}
    assert first["remedy"]["name"] == "lr_cut" and last["config"]["lr"] < 0.45
    assert last["status"] == "completed" and last["final_metrics"]["loss"] < 0.05
    found, _ = judged_in_worker(out, 0)  # judged beside the script's process, in its worker
    assert found[0]["signature"] == first["findings"][0]["signature"]
    stdout = (out / "runs" / "run-000" / "stdout.log").read_text()
    assert stdout.startswith("training with lr=0.9 for 300 steps")  # kept as printed
    assert (out / "runs" / f"run-{last['run']:03d}" / "stdout.log").read_text().count("Step") == 60
    time.sleep(1)
    assert _processes_with(tag) == []  # the stopped run's helper process went with it


def test_a_plain_script_that_exits_non_zero_is_a_crash_with_its_stderr(tmp_path):
    cfg = """\
params: {lr: 0.05, fail-at: 42}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
command:
  args: ["--json", "--lr", "{lr}", "--fail-at", "{fail-at}"]
"""
    code, report, out = run_rescue(tmp_path, cfg, script="plain_sgd.py", extra=["-q"])
    assert code == 3 and report["outcome"] == "not_rescued"
    run = report["runs"][0]
    assert run["status"] == "crashed" and run["reports"] == 9  # JSON lines of steps 0..40
    finding = run["findings"][0]
    assert finding["signature"] == "crash"
    assert "ValueError: corrupt batch at step 42" in finding["reason"]
    assert "exited with code 1" in finding["evidence"]["traceback"]
    assert "Traceback" in (out / "runs" / "run-000" / "stderr.log").read_text()


def test_a_child_that_left_the_scripts_process_group_does_not_hold_the_run(tmp_path):
    cfg = """\
params: {lr: 0.05}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
"""
    code, report, out = run_rescue(tmp_path, cfg, script="detached_child.py", extra=["-q"])
    stdout = (out / "runs" / "run-000" / "stdout.log").read_text()
    child = int(stdout.split()[1])
    try:
        assert code == 0 and report["outcome"] == "healthy"
        assert report["runs"][0]["status"] == "completed" and report["runs"][0]["reports"] == 10
        stderr = (out / "runs" / "run-000" / "stderr.log").read_text()
        assert f"pid {child}" in stderr and "still holds its output open" in stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_run_ends_completed_at_its_declared_length(tmp_path):
    cfg = """\
params: {lr: 0.05, steps: 3000, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
budget: {restarts: 1, reports_per_run: 40}
"""
    code, report, out = run_rescue(tmp_path, cfg, extra=["-q"])
    assert code == 0 and report["outcome"] == "healthy"
    (run,) = report["runs"]
    assert run["status"] == "completed" and run["reports"] == 40  # of the script's 600
    found, ending = judged_in_worker(out, 0)
    assert not found and ending is not None  # its end-of-run checks, made in its worker
    assert [f["signature"] for f in run["findings"]] == [f["signature"] for f in ending]
    assert len((out / "runs" / "run-000" / "metrics.jsonl").read_text().splitlines()) == 40


def test_results_go_to_a_storage_uri_and_a_restart_goes_on_from_a_checkpoint_there(tmp_path):
    """`ray.storage_path` as a URI (file:// here; s3:// or gs:// the same way): Ray Tune's
    results and checkpoints land there, not in OUTDIR, and a `restart: checkpoint` remedy
    hands the worker the checkpoint's URI."""
    store = tmp_path / "store"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "extends: default\nremedies:\n"
        "  lr_cut: {role: learning_rate, scale: [0.01, 0.5], tries: 2, restart: checkpoint}\n"
    )
    cfg = (
        "params: {lr: 0.3, epochs: 12, checkpoint_every: 1, seed: 0}\n"
        "knobs:\n  lr: {role: learning_rate, low: 1.0e-4, high: 1.0, log: true}\n"
        "success:\n  loss: {below: 0.05}\n"
        f"policy: {policy}\n"
        f"ray: {{storage_path: 'file://{store}'}}\n"
    )
    code, report, out = run_rescue(tmp_path, cfg, "checkpointed_sgd.py", ["-q"])
    assert code == 0 and report["outcome"] == "rescued"
    first, second = report["runs"][:2]
    assert first["remedy"]["restart"] == "checkpoint"
    onset = first["findings"][0]["onset"]
    # The runs are the trials of one Ray Tune experiment, each trial folder named as its run.
    (experiment,) = store.iterdir()
    run0 = f"file://{experiment}/run-000/"
    assert first["checkpoints"] and all(path.startswith(run0) for _, path in first["checkpoints"])
    epochs = [
        int(json.loads(line)["metrics"]["epoch"])
        for line in (out / "runs" / "run-001" / "metrics.jsonl").read_text().splitlines()
    ]
    assert 0 < epochs[0] <= onset  # went on after the checkpoint it was given
    assert epochs == list(range(epochs[0], 12)) and second["met_success"]
    assert (experiment / "run-000").is_dir() and (experiment / "run-001").is_dir()
    assert not (out / "ray").exists()
