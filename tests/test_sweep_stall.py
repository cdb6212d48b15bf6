"""A sweep trial that stops reporting (a hung data loader) is stopped as a stall while the
other trials go on: the adapter's polling driven by hand on a real lane and loop, then a real
sweep under Ray Tune."""

import json
import math
import pickle
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray.tune.experiment import Trial

from rescue.config import load_config
from rescue.engine.experiment import _LoopCallback, _LoopStopper
from rescue.engine.lane import Lane
from rescue.engine.sweep import SweepLoop, SweepReport, choose_objective
from rescue.policy import load_policy
from rescue.search.study import SweepStudy

SCRIPTS = Path(__file__).parent / "scripts"


def impatient_policy(folder: Path, seconds: float) -> Path:
    path = folder / "impatient.yaml"
    path.write_text(
        f"extends: default\nsignatures:\n  stall:\n    params: {{seconds: {seconds}}}\n"
    )
    return path


# --- the polling, without Ray --------------------------------------------------------------
class Silent:
    def trial_started(self, trial, changes): ...
    def finding(self, trial, finding): ...
    def trial_ended(self, trial): ...
    def finished(self, report): ...


def make_loop(tmp_path, write_cfg, n, stall_seconds=None):
    """A sweep loop of ``n`` trials over lr, with the stall limit given (default policy's
    otherwise)."""
    policy = load_policy(
        "default" if stall_seconds is None else str(impatient_policy(tmp_path, stall_seconds))
    )
    cfg = load_config(
        write_cfg(
            "params: {lr: 0.01}\nknobs:\n  lr: {role: learning_rate, low: 1.0e-4, high: 1.0}\n"
            "success:\n  loss: {below: 0.05}\n"
        )
    )
    objective = choose_objective(cfg)
    report = SweepReport(script="t.py", config_file="c", out=str(tmp_path), storage="", study="s")
    study = SweepStudy(None, "sweep", objective.mode, n, seed=0)
    return SweepLoop(cfg, policy, study, objective, n, tmp_path, report, Silent())


def lane_for(loop, slots):
    """The sweep's lane, as the Tune adapter sees it; trials are handed to it by hand."""
    return Lane("sweep", str(loop.out), {"cpu": 1, "gpu": 0}, "t.py", "train", slots=slots)


def start(loop, lane, key):
    """The loop's next trial, suggested to Tune as ``key``."""
    live = loop.next_trial()
    lane.submit(live.request)
    assert lane.suggest(key) == live.request.params
    return live


def end(loop, live):
    """The trial ended as the lane says (once the adapter told it)."""
    assert live.request.execution is not None
    loop.ended(live, live.request.execution)


def fake_trial(key, status=Trial.RUNNING):
    return SimpleNamespace(
        trial_id=key,
        status=status,
        temporary_state=SimpleNamespace(ray_actor=f"actor of {key}"),
        error_file=None,
        get_error=lambda: f"{key} failed",
    )


def test_a_free_slot_never_holds_up_tunes_loop_while_a_trial_is_in_flight(tmp_path, write_cfg):
    from rescue.engine.experiment import WAIT

    loop = make_loop(tmp_path, write_cfg, 2)
    lane = lane_for(loop, 2)
    first = start(loop, lane, "first")
    asked = time.monotonic()
    assert lane.suggest("second") is WAIT  # nothing queued: Tune goes on with "first"
    assert time.monotonic() - asked < 0.05
    second = loop.next_trial()
    lane.submit(second.request)
    assert lane.suggest("second") == second.request.params
    lane.finish("first")
    lane.finish("second")
    for live in (first, second):
        end(loop, live)
    lane.close()
    asked = time.monotonic()
    assert lane.suggest("none") is None  # idle and closed: no trial is left
    assert time.monotonic() - asked < 0.5


def test_only_a_running_silent_trial_is_killed_once_and_recorded_as_a_stall(tmp_path, write_cfg):
    loop = make_loop(tmp_path, write_cfg, 4, stall_seconds=0.2)
    lane = lane_for(loop, 4)
    stopper = _LoopStopper(lane)
    killed: list[str] = []
    callback = _LoopCallback(lane, stopper, kill=killed.append)
    keys = ["hung", "fine", "sick", "queued"]
    lives = {key: start(loop, lane, key) for key in keys}
    trials = {key: fake_trial(key) for key in keys}
    for key in keys[:3]:
        callback.on_trial_start(iteration=0, trials=[], trial=trials[key])
    trials["queued"].status = Trial.PENDING  # suggested, its actor not started yet
    for iteration in (1, 2, 3):
        for key in ("hung", "fine"):
            assert not stopper(key, {"training_iteration": iteration, "loss": 0.5 / iteration})
    assert stopper("sick", {"training_iteration": 1, "loss": math.nan})  # Tune stops it

    callback.on_step_begin(iteration=0, trials=list(trials.values()))
    assert killed == []  # all within the limit
    time.sleep(0.3)
    assert not stopper("fine", {"training_iteration": 4, "loss": 0.1})
    for step in range(3):  # polled again and again while the kill is under way
        callback.on_step_begin(iteration=1 + step, trials=list(trials.values()))
    assert killed == ["actor of hung"]

    # A report racing the kill neither reaches the loop nor asks Tune for a STOP.
    assert not stopper("hung", {"training_iteration": 4, "loss": 0.1})
    callback.on_trial_error(iteration=4, trials=[], trial=trials["hung"])
    callback.on_trial_complete(iteration=4, trials=[], trial=trials["fine"])
    callback.on_trial_complete(iteration=4, trials=[], trial=trials["sick"])
    for key in keys[:3]:
        end(loop, lives[key])
    runs = {run.run: run for run in loop.report.runs}
    hung, fine, sick, queued = (runs[i] for i in range(4))
    assert hung.status == "stopped" and hung.reports == 3 and hung.error is None
    assert hung.diagnosis.signature == "stall" and hung.outcome == "diagnosed"
    assert hung.diagnosis.evidence["seconds_without_report"] >= 0.2
    assert fine.status == "completed" and fine.outcome == "healthy" and fine.reports == 4
    assert sick.status == "stopped" and sick.diagnosis.signature == "non_finite"

    # Failed before it started (a reused worker Tune could not reset): run again once, on a
    # fresh worker; failed again, it crashed.
    callback.on_trial_error(iteration=4, trials=[], trial=trials["queued"])
    assert lives["queued"].request.execution is None and queued.outcome == "running"
    assert lane.suggest("queued-again") == lives["queued"].request.params
    callback.on_trial_error(iteration=5, trials=[], trial=fake_trial("queued-again"))
    end(loop, lives["queued"])
    assert queued.status == "crashed" and queued.error == "queued-again failed"

    inert = pickle.loads(pickle.dumps(callback))  # Tune pickles its run config
    assert inert.loop is None and inert.stopper.loop is None
    inert.on_step_begin(iteration=9, trials=list(trials.values()))


def test_the_stall_clock_starts_when_the_trial_starts_not_when_it_was_suggested(
    tmp_path, write_cfg
):
    loop = make_loop(tmp_path, write_cfg, 2, stall_seconds=0.3)
    lane = lane_for(loop, 2)
    callback = _LoopCallback(lane, _LoopStopper(lane), kill=lambda actor: None)
    start(loop, lane, "t")
    time.sleep(0.4)  # waiting for a free slot, or for Ray to start a worker
    callback.on_trial_start(iteration=0, trials=[], trial=fake_trial("t"))
    assert not lane.should_stop("t")
    time.sleep(0.4)
    assert lane.should_stop("t")  # silent since it started


def test_a_trial_tune_fails_without_telling_callbacks_is_still_recorded(tmp_path, write_cfg):
    """Tune marks a trial ERROR without on_trial_error when its reused worker cannot be
    reset; the next poll tells the lane."""
    loop = make_loop(tmp_path, write_cfg, 2)
    lane = lane_for(loop, 2)
    callback = _LoopCallback(lane, _LoopStopper(lane), kill=lambda actor: None)
    live = start(loop, lane, "t")
    callback.on_trial_start(iteration=0, trials=[], trial=fake_trial("t"))
    failed = fake_trial("t", status=Trial.ERROR)
    callback.on_step_begin(iteration=0, trials=[failed])
    end(loop, live)
    run = loop.report.runs[0]
    assert run.status == "crashed" and run.error == "t failed"
    assert run.diagnosis.signature == "crash"


# --- a real sweep under Ray Tune -----------------------------------------------------------
# Once Tune starts a trial, a fresh actor still imports the script and torch before its first
# report (seconds on 2 cores), which the stall clock counts; the limit leaves room for that.
STALL_SECONDS = 15
HANG_SECONDS = 120


@pytest.mark.integration
def test_stalled_sweep_trials_are_stopped_as_stalls_and_the_sweep_goes_on(local_ray, tmp_path):
    from rescue.cli.main import main

    policy = impatient_policy(tmp_path, STALL_SECONDS)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "params: {lr: 0.05, steps: 150, seed: 0, workers: 0, hang_after: 6, "
        f"hang_seconds: {HANG_SECONDS}}}\n"
        "knobs: {}\nsearch:\n  workers: {low: 0, high: 3}\n"
        "success:\n  loss: {below: 0.05}\n"
        f"policy: {policy}\n"
    )
    out = tmp_path / "out"
    argv = ["sweep", str(SCRIPTS / "stalling_loader.py"), "--config", str(cfg), "--out", str(out)]
    started = time.monotonic()
    # Seed 6 draws workers 3 then 1: the first pair has a hung trial and a healthy one.
    code = main([*argv, "--trials", "4", "--parallel", "2", "--seed", "6", "-q"])
    elapsed = time.monotonic() - started
    report = json.loads((out / "report.json").read_text())
    runs = report["runs"]
    assert len(runs) == 4 and len(report["trials"]) == 4
    assert runs[0]["config"]["workers"] > 1 and runs[1]["config"]["workers"] <= 1
    hung = [r for r in runs if r["config"]["workers"] > 1]
    fine = [r for r in runs if r["config"]["workers"] <= 1]
    rows = {row["trial"]: row for row in report["trials"]}
    for run in hung:
        assert run["status"] == "stopped" and run["reports"] == 6 and run["error"] is None
        finding = run["findings"][0]
        assert finding["signature"] == "stall" and finding["action"] == "restart"
        # Polled several times a second while the trial was silent.
        assert STALL_SECONDS <= finding["evidence"]["seconds_without_report"] < STALL_SECONDS + 2
        assert run["seconds"] < HANG_SECONDS / 3  # cut short, not waited out
        row = rows[run["run"]]
        assert row["status"] == "diagnosed" and row["signature"] == "stall"
    for run in fine:
        assert run["status"] == "completed" and run["reports"] == 30 and run["met_success"]
        assert rows[run["run"]]["status"] == "healthy"
    assert report["sweep"]["signatures"] == {"healthy": len(fine), "stall": len(hung)}
    assert code == 0 and report["outcome"] == "healthy"
    assert elapsed < HANG_SECONDS  # no slot waited for a hung trial to end by itself
