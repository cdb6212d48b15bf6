"""rescue sweep: the search: section, the objective, the loop and its report without Ray (a
scripted stand-in for the lane), and one real sweep under Ray Tune."""

import json
import math
import threading
import time
from pathlib import Path

import optuna
import pytest

from rescue.config import load_config
from rescue.detectors.findings import Finding
from rescue.engine.lane import Execution
from rescue.engine.sweep import (
    SweepLoop,
    SweepReport,
    SweepTrial,
    choose_objective,
    rank,
    signature_counts,
)
from rescue.errors import ConfigError, RescueError
from rescue.policy import load_policy
from rescue.search.study import SweepStudy, sickness
from scripted_lane import HandTrial, ScriptedLane

SCRIPTS = Path(__file__).parent / "scripts"

CFG = """\
params: {lr: 0.01, width: 32, act: tanh, steps: 60}
knobs:
  lr: {role: learning_rate, low: 1.0e-4, high: 1.0, log: true}
search:
  width: {low: 8, high: 64}
  act: {choices: [tanh, relu]}
success:
  loss: {below: 0.05}
"""


# --- the search: section -------------------------------------------------------------------
def test_search_params_load_with_their_domains(write_cfg):
    cfg = load_config(write_cfg(CFG))
    assert set(cfg.search) == {"width", "act"}
    assert cfg.search["width"].high == 64 and cfg.search["act"].choices == ("tanh", "relu")


@pytest.mark.parametrize(
    "old, new, key, expected",
    [
        ("width: {low: 8,", "width: {role: init, low: 8,", "search.width.role", "unknown key"),
        ("  width: {low", "  depth: {low", "search.depth", "names a key of params"),
        ("  act: {choices", "  lr: {choices", "search.lr", "not also a knob"),
        ("width: 32", "width: 100", "params.width", "the domain of search.width"),
        ("low: 8, high: 64", "low: 64, high: 8", "search.width", "low < high"),
    ],
)
def test_bad_search_entries_name_the_key(write_cfg, old, new, key, expected):
    assert old in CFG
    path = write_cfg(CFG.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {key}: expected"), str(info.value)
    assert expected in str(info.value)


# --- the objective -------------------------------------------------------------------------
def test_the_objective_is_the_first_success_metric_or_the_flags(write_cfg):
    cfg = load_config(write_cfg(CFG))
    assert choose_objective(cfg).metric == "loss" and choose_objective(cfg).mode == "min"
    assert choose_objective(cfg, "acc", "max").mode == "max"
    with pytest.raises(RescueError, match="--mode"):
        choose_objective(cfg, "acc")
    bare = load_config(write_cfg(CFG.split("success:")[0]))
    with pytest.raises(RescueError, match="success: section"):
        choose_objective(bare)


# --- ranking and counts --------------------------------------------------------------------
def _diagnosed(run, signature, reports):
    finding = Finding(signature, "loss", reports - 1, "why")
    return SweepTrial(run, {"lr": 1.0}, findings=[finding], reports=reports, outcome="diagnosed")


def test_healthy_trials_rank_first_by_objective_and_diagnoses_are_counted():
    trials = [
        _diagnosed(0, "divergence", 5),
        SweepTrial(1, {"lr": 0.01}, objective=0.2, outcome="healthy", reports=60),
        _diagnosed(2, "explosion", 3),
        SweepTrial(3, {"lr": 0.05}, objective=0.01, outcome="healthy", reports=60),
        _diagnosed(4, "divergence", 9),
    ]
    assert [t.run for t in rank(trials, "min")] == [3, 1, 4, 0, 2]
    assert signature_counts(trials) == {"divergence": 2, "healthy": 2, "explosion": 1}


def test_a_sick_trial_is_infeasible_and_one_nearer_healthy_is_less_so():
    assert 2.0 == sickness(None) >= sickness(3.0) > sickness(-1.0) >= 1.0


# --- the loop, on a scripted lane -----------------------------------------------------------
def fake_losses(config):
    """sgd_regression in miniature: above lr 0.1 the loss climbs, below it falls to a floor
    that is lower the larger the learning rate."""
    lr = config["lr"]
    floor = 0.001 + 0.02 * (0.1 - lr) / 0.1 if lr < 0.1 else None
    loss = 0.5
    for _ in range(config["steps"]):
        loss = loss * (1 + 5 * lr) if floor is None else floor + (loss - floor) * 0.8
        yield {"loss": loss}


def drive(loop):
    """Every trial, one at a time, each fed its reports until its monitor says stop."""
    loop.run(ScriptedLane(lambda config: fake_losses(config)), parallel=1)
    return loop.result()


class Silent:
    def trial_started(self, trial, changes): ...
    def finding(self, trial, finding): ...
    def trial_ended(self, trial): ...
    def finished(self, report): ...


def make_loop(tmp_path, write_cfg, n, rescue_sick=False, seed=0):
    cfg = load_config(write_cfg(CFG.split("search:")[0] + "success:\n  loss: {below: 0.05}\n"))
    objective = choose_objective(cfg)
    study = SweepStudy(None, "sweep", objective.mode, n, seed=seed)
    report = SweepReport(script="t.py", config_file="c", out=str(tmp_path), storage="", study="s")
    loop = SweepLoop(
        cfg, load_policy("default"), study, objective, n, tmp_path, report, Silent(), rescue_sick
    )
    return loop, study


def test_diverging_trials_are_stopped_and_told_to_the_study_as_infeasible(tmp_path, write_cfg):
    loop, study = make_loop(tmp_path, write_cfg, 16)
    report = drive(loop)
    trials = report.runs
    assert len(trials) == 16
    sick = [t for t in trials if t.outcome == "diagnosed"]
    assert sick, "some trial sampled the failure region"
    for trial in sick:
        assert trial.config["lr"] > 0.1 and trial.status == "stopped"
        assert trial.diagnosis.signature in {"divergence", "explosion", "non_finite"}
        assert trial.reports < 60
    for trial in trials:
        if trial.config["lr"] < 0.05:
            assert trial.outcome == "healthy"
    assert report.outcome == "healthy" and report.exit_code == 0
    assert (
        report.final_config["lr"] < 0.1
        and report.final_config == report.runs[report.best_trial].config
    )
    frozen = {t.number: t for t in study.study.get_trials()}
    for trial in trials:
        ft = frozen[trial.trial]
        if trial.outcome == "diagnosed":
            assert ft.state == optuna.trial.TrialState.PRUNED
            assert ft.constraints["sick"] > 1 and ft.intermediate_values
        else:
            assert ft.state == optuna.trial.TrialState.COMPLETE
            assert ft.constraints["sick"] == -1 and math.isclose(ft.value, trial.objective)

    data = json.loads((tmp_path / "report.json").read_text())
    assert data["outcome"] == "healthy" and len(data["trials"]) == 16
    assert data["sweep"]["signatures"] == signature_counts(trials)
    assert sum(data["sweep"]["signatures"].values()) == 16
    first = data["trials"][0]
    assert first["status"] == "healthy" and first["trial"] == data["sweep"]["best_trial"]
    assert set(first) >= {"params", "objective", "status", "signature", "reports"}
    assert data["trials"][-1]["status"] == "diagnosed" and data["trials"][-1]["signature"]
    assert len(data["runs"]) == 16 and data["total_reports"] == sum(t.reports for t in trials)


def late_divergence(config):
    """Best near lr 0.01; above lr 0.1 the loss first drops fast, then climbs."""
    lr = config["lr"]
    floor = 0.005 + 0.01 * abs(math.log10(lr / 0.01))
    loss = 0.5
    for step in range(config["steps"]):
        if lr > 0.1:
            loss = max(loss * 0.6, 0.001) if step < 20 else loss * 1.3
        else:
            loss = floor + (loss - floor) * 0.8
        yield {"loss": loss}


def test_the_sampler_learns_to_avoid_the_failure_region(tmp_path, write_cfg, monkeypatch):
    """Diagnosed trials are infeasible for TPE: after the random start it samples the diverging
    region (a quarter of the log domain) far less often than chance."""
    monkeypatch.setitem(globals(), "fake_losses", late_divergence)
    loop, _ = make_loop(tmp_path, write_cfg, 40)
    report = drive(loop)
    sick = [t for t in report.runs if t.outcome == "diagnosed"]
    assert sick and all(t.config["lr"] > 0.1 for t in sick)
    later = report.runs[10:]
    assert sum(t.config["lr"] > 0.1 for t in later) / len(later) < 0.25 / 2
    assert 0.003 < report.final_config["lr"] < 0.03


def test_a_sick_trial_can_be_rescued_in_place_with_the_policy_remedy(tmp_path, write_cfg):
    loop, _ = make_loop(tmp_path, write_cfg, 12, rescue_sick=True)
    report = drive(loop)
    rescues = [t for t in report.runs if t.rescue_of is not None]
    assert rescues
    for rescue in rescues:
        parent = report.runs[rescue.rescue_of]
        assert parent.outcome == "diagnosed" and parent.remedy["name"] == "lr_cut"
        assert rescue.config["lr"] < parent.config["lr"] / 2 + 1e-12
        assert parent.remedy["changes"]["lr"] == [parent.config["lr"], rescue.config["lr"]]
        # Recorded as a rescue records its remedies (engine.record.remedy_entry).
        assert parent.remedy["restart"] == "fresh" and parent.remedy["why"]
    assert len(report.runs) == 12  # rescues count against the budget


def run_trial(loop, key, lr=None, checkpoint_every=0):
    """One trial driven to its end; ``lr``: enqueued, so the study asks it."""
    if lr is not None:
        loop.study.study.enqueue_trial({"lr": lr})
    trial = HandTrial(loop)
    for step, metrics in enumerate(fake_losses(trial.config)):
        stop = trial.report(metrics)
        if checkpoint_every and step % checkpoint_every == checkpoint_every - 1:
            trial.checkpoint(step, f"/store/{key}/checkpoint_{step:06d}")
        if stop:
            break
    return trial.end()


def rescue_range(trial):
    """The (low, high) of the lr range the trial's remedy searched."""
    shown = trial.remedy["search_space"]["lr"]
    return tuple(float(shown.split(f"{end}=")[1].split(",")[0]) for end in ("low", "high"))


@pytest.mark.parametrize("earlier_lr", [None, 0.15])
def test_a_sick_trials_remedy_reads_what_every_trial_so_far_taught(tmp_path, write_cfg, earlier_lr):
    """A trial at lr 0.15 that diverged bounds the cut of a later one at 0.9 below 0.15, as a
    rescue's earlier runs bound its next; without it the cut's window reaches above 0.15."""
    loop, _ = make_loop(tmp_path, write_cfg, 4, rescue_sick=True)
    if earlier_lr is not None:
        loop.rescue_sick = False  # its own rescue is not the point here
        earlier = run_trial(loop, "a", earlier_lr)
        assert earlier.verdict is not None and earlier.evidence["side"] == "too_high"
        loop.rescue_sick = True
    sick = run_trial(loop, "b", 0.9)
    assert sick.outcome == "diagnosed" and sick.remedy["name"] == "lr_cut"
    assert sick.evidence["firm"] and sick.evidence["side"] == "too_high"
    low, high = rescue_range(sick)
    if earlier_lr is None:
        assert high > 0.15
    else:
        assert low < high < 0.15
    rescue = run_trial(loop, "c")
    assert rescue.rescue_of == sick.run and low <= rescue.config["lr"] <= high
    saved = json.loads((tmp_path / "report.json").read_text())
    told = [(e["run"], e["value"], e["verdict"]) for e in saved["evidence"]["lr"]]
    assert told[-2] == (sick.run, 0.9, "too_high") and len(told) == len(saved["runs"])


def test_a_remedy_that_restarts_from_a_checkpoint_does_so_in_a_sweep(tmp_path, write_cfg):
    loop, _ = make_loop(tmp_path, write_cfg, 4, rescue_sick=True)
    cut = loop.policy.remedies["lr_cut"]
    loop.policy.remedies["lr_cut"] = cut.model_copy(update={"restart": "checkpoint"})
    sick = run_trial(loop, "a", 0.9, checkpoint_every=2)
    assert sick.remedy["restart"] == "checkpoint" and sick.checkpoints
    onset = min(f.onset if f.onset is not None else f.step for f in sick.findings)
    expected = [p for s, p in sick.checkpoints if s < onset][-1]
    rescue = HandTrial(loop)
    assert rescue.live.trial.rescue_of == sick.run
    assert rescue.request.resume_from == expected == sick.checkpoint_before_trouble()
    assert HandTrial(loop).request.resume_from is None  # a fresh trial starts afresh


def test_a_trial_ends_at_the_declared_length_as_a_rescues_run_does(tmp_path, write_cfg):
    """budget.reports_per_run: a trial going on past it is ended there, healthy, in the worker
    (the judge spec it gets) and here alike."""
    cfg = load_config(
        write_cfg(
            CFG.split("search:")[0] + "success:\n  loss: {below: 0.05}\n"
            "budget: {reports_per_run: 20}\n"
        )
    )
    objective = choose_objective(cfg)
    study = SweepStudy(None, "sweep", objective.mode, 1, seed=0)
    report = SweepReport(script="t.py", config_file="c", out=str(tmp_path), storage="", study="s")
    loop = SweepLoop(cfg, load_policy("default"), study, objective, 1, tmp_path, report, Silent())
    assert loop.judge_spec.length == 20
    study.study.enqueue_trial({"lr": 0.01})
    sent = []

    def script(config):
        for metrics in fake_losses(config):  # 60 reports, unless told to stop
            sent.append(metrics)
            yield metrics

    loop.run(ScriptedLane(script), parallel=1)
    trial = loop.result().runs[0]
    assert len(sent) == trial.reports == 20
    assert trial.outcome == "healthy" and trial.status == "completed"
    assert trial.met_success


def test_a_trial_without_the_objective_metric_is_misconfigured_and_ends_the_sweep(
    tmp_path, write_cfg
):
    """As a rescue says of its run: the success metric was never reported, which no other
    trial would change; the sweep starts no further trial and says so."""
    loop, study = make_loop(tmp_path, write_cfg, 4)
    first = HandTrial(loop)
    in_flight = HandTrial(loop)  # two at a time: the second is already running
    for trial in (first, in_flight):
        trial.report({"acc": 0.5})
    first.end()
    assert loop.next_trial() is None
    in_flight.end()
    report = loop.result()
    assert len(report.runs) == 2
    assert report.outcome == "not_found" and report.exit_code == 3
    assert report.summary == (
        "misconfigured: success metric(s) loss never reported (reported: acc)"
    )
    for trial in report.runs:
        assert trial.outcome == "diagnosed" and trial.verdict.signature == "misconfigured"
        assert trial.remedy is None and trial.evidence is None
    states = {t.state for t in study.study.get_trials()}
    assert states == {optuna.trial.TrialState.FAIL}  # nothing for the sampler to learn


def test_a_trials_checkpoints_are_recorded_as_their_reports_name_them(tmp_path, write_cfg):
    loop, _ = make_loop(tmp_path, write_cfg, 1)
    trial = HandTrial(loop)
    for step in range(8):
        trial.report({"loss": 1.0 / (step + 1)})
        if step % 4 == 3:
            trial.checkpoint(step, f"/store/sweep/run-000/checkpoint_{step // 4:06d}")
    trial.end()
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["runs"][0]["checkpoints"] == [
        [3, "/store/sweep/run-000/checkpoint_000000"],
        [7, "/store/sweep/run-000/checkpoint_000001"],
    ]


def test_no_healthy_trial_meeting_success_exits_3_and_says_why(tmp_path, write_cfg):
    loop, _ = make_loop(tmp_path, write_cfg, 3)
    loop.config = loop.config.model_copy(update={"success": {}})
    loop.run(ScriptedLane(lambda config: ({"loss": 0.5 * 1.5**s} for s in range(60))), 1)
    report = loop.result()
    assert report.exit_code == 3 and report.outcome == "not_found"
    assert report.summary.startswith("no healthy trial: all 3 were diagnosed")


def test_a_crash_is_a_diagnosis_told_as_failed(tmp_path, write_cfg):
    loop, study = make_loop(tmp_path, write_cfg, 1)
    trial = HandTrial(loop)
    trial.report({"loss": 0.4})
    trial.end(error="Traceback ...\nRuntimeError: boom")
    report = loop.result()
    trial = report.runs[0]
    assert trial.outcome == "diagnosed" and trial.diagnosis.signature == "crash"
    assert study.study.get_trials()[0].state == optuna.trial.TrialState.FAIL
    assert report.exit_code == 3


class CountingLane(ScriptedLane):
    """A scripted lane whose runs take a little while, counting how many run at once."""

    def __init__(self, script, seconds=0.05):
        super().__init__(script)
        self.seconds, self.now, self.most = seconds, 0, 0
        self.lock = threading.Lock()

    def run(self, request):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.seconds)
        try:
            return super().run(request)
        finally:
            with self.lock:
                self.now -= 1


def test_k_slots_run_k_trials_at_a_time_each_started_and_ended_once(tmp_path, write_cfg):
    loop, study = make_loop(tmp_path, write_cfg, 9)
    lane = CountingLane(fake_losses)
    loop.run(lane, parallel=3)
    report = loop.result()
    assert lane.most == 3 and len(lane.requests) == 9
    assert [t.run for t in report.runs] == list(range(9))
    assert all(t.outcome in ("healthy", "diagnosed") for t in report.runs)
    assert sorted(t.trial for t in report.runs) == list(range(9))  # one Optuna trial each
    states = {t.state for t in study.study.get_trials()}
    assert optuna.trial.TrialState.RUNNING not in states


def test_an_interrupted_trial_stays_in_flight_and_no_slot_starts_another(tmp_path, write_cfg):
    """Ctrl-C: the lane says ``interrupted``; that trial stays running (rescue resume runs it
    again), the others in flight end as they end, and no trial starts after."""
    loop, _ = make_loop(tmp_path, write_cfg, 8)

    class Interrupted(CountingLane):
        def run(self, request):
            if Path(request.log_dir).name == "run-003":
                self.requests.append(request)
                return Execution("interrupted")
            return super().run(request)

    lane = Interrupted(fake_losses)
    loop.run(lane, parallel=2)
    assert len(lane.requests) <= 5 and len(loop.report.runs) == len(lane.requests)
    running = [t for t in loop.report.runs if t.outcome == "running"]
    assert [t.run for t in running] == [3]
    report = loop.interrupted("SIGINT")
    assert report.outcome == "interrupted" and not loop.live


def test_an_error_in_a_slot_is_raised_in_the_callers_thread(tmp_path, write_cfg):
    loop, _ = make_loop(tmp_path, write_cfg, 4)

    class Broken(ScriptedLane):
        def run(self, request):
            raise RuntimeError("the experiment could not start")

    with pytest.raises(RuntimeError, match="could not start"):
        loop.run(Broken(fake_losses), parallel=2)
    assert len(loop.report.runs) <= 2  # no slot went on after it


# --- a real sweep under Ray Tune -----------------------------------------------------------
@pytest.mark.integration
def test_a_real_sweep_stops_diverging_trials_and_finds_a_healthy_learning_rate(local_ray, tmp_path):
    from rescue.cli.main import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "params: {lr: 0.01, steps: 300, seed: 0, step_seconds: 0.01}\n"
        "knobs:\n  lr: {role: learning_rate, low: 1.0e-4, high: 1.0, log: true}\n"
        "success:\n  loss: {below: 0.05}\n"
        "budget: {reports_per_run: 50}\n"  # of its 60: ended there, as a rescue's run is
    )
    out = tmp_path / "out"
    argv = ["sweep", str(SCRIPTS / "sgd_regression.py"), "--config", str(cfg), "--out", str(out)]
    code = main([*argv, "--trials", "8", "--parallel", "2", "--seed", "0", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert code == 0 and report["outcome"] == "healthy"
    trials = report["trials"]
    assert len(trials) == 8 and len(report["runs"]) == 8
    diagnosed = [t for t in trials if t["status"] == "diagnosed"]
    assert diagnosed
    for trial in diagnosed:
        assert trial["signature"] in {"divergence", "explosion", "non_finite"}
        assert trial["params"]["lr"] > 0.1
        # Stopped early: a report every 50 ms here, and reports travel in batches of at
        # most 0.25 s, so the stop reaches the run a few reports after the finding.
        assert trial["reports"] <= trial["finding"]["step"] + 15 < 60
    for trial in trials:
        if trial["params"]["lr"] > 0.3:
            assert trial["status"] == "diagnosed"
    best = trials[0]
    assert best["status"] == "healthy" and best["params"]["lr"] < 0.1 and best["met_success"]
    assert report["final_config"]["lr"] == best["params"]["lr"]
    assert sum(report["sweep"]["signatures"].values()) == 8
    assert report["sweep"]["signatures"]["healthy"] == 8 - len(diagnosed)
    for run in report["runs"]:
        if run["outcome"] == "healthy":
            assert run["status"] == "completed" and run["reports"] == 50
    for run in report["runs"]:  # every report reached the loop and was kept
        lines = (out / "runs" / f"run-{run['run']:03d}" / "metrics.jsonl").read_text()
        assert len(lines.splitlines()) == run["reports"]


@pytest.mark.integration
def test_a_sweep_of_a_plain_script_runs_it_with_flags_and_stops_sick_trials_whole(
    local_ray, tmp_path
):
    import os

    from rescue.cli.main import main
    from test_integration import _processes_with

    tag = f"rescue-sweep-helper-{os.getpid()}"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"params: {{lr: 0.01, steps: 300, helper-tag: {tag}}}\n"
        "knobs:\n  lr: {role: learning_rate, low: 1.0e-3, high: 1.0, log: true}\n"
        'command:\n  args: ["--lr", "{lr}", "--steps", "{steps}", "--helper-tag", "{helper-tag}"]\n'
        "  metrics: {loss: 'Loss: (\\S+)'}\n"
        "success:\n  loss: {below: 0.05}\n"
    )
    out = tmp_path / "out"
    argv = ["sweep", str(SCRIPTS / "plain_sgd.py"), "--config", str(cfg), "--out", str(out)]
    code = main([*argv, "--trials", "4", "--parallel", "2", "--seed", "1", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert code == 0 and report["outcome"] == "healthy"
    runs = report["runs"]
    assert len(runs) == 4 and all("rescue_log_dir" not in r["config"] for r in runs)
    diagnosed = [r for r in runs if r["outcome"] == "diagnosed"]
    assert diagnosed, "seed 1 samples the failure region"
    for run in runs:
        stdout = (out / "runs" / f"run-{run['run']:03d}" / "stdout.log").read_text()
        assert stdout.startswith(f"training with lr={run['config']['lr']}")  # its own flags
        assert stdout.count("Loss:") == run["reports"]  # every line it printed is recorded
        if run["outcome"] == "diagnosed":
            # Found early; the lines it printed before the stop reached it are kept too.
            assert run["status"] == "stopped" and run["findings"][0]["step"] < 59
            assert run["findings"][0]["signature"] in {"divergence", "explosion", "non_finite"}
        else:
            assert run["reports"] == 60
    time.sleep(1)
    assert _processes_with(tag) == []  # stopped trials' helper processes went with them


@pytest.mark.integration
def test_the_wall_clock_budget_stops_trials_in_flight(local_ray, tmp_path):
    from rescue.cli.main import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(  # each trial would take 30 s; the sweep has 6
        "params: {lr: 0.01, steps: 300, seed: 0, step_seconds: 0.1}\n"
        "knobs:\n  lr: {role: learning_rate, low: 1.0e-3, high: 0.05, log: true}\n"
        "success:\n  loss: {below: 0.05}\n"
        "budget: {seconds: 6}\n"
    )
    out = tmp_path / "out"
    argv = ["sweep", str(SCRIPTS / "sgd_regression.py"), "--config", str(cfg), "--out", str(out)]
    started = time.monotonic()
    code = main([*argv, "--trials", "4", "--parallel", "2", "--seed", "0", "-q"])
    assert time.monotonic() - started < 30
    report = json.loads((out / "report.json").read_text())
    assert code == 3 and report["outcome"] == "not_found"
    assert "the wall-clock budget of 6 s was spent" in report["summary"]
    cut = [r for r in report["runs"] if r["outcome"] == "cut"]
    assert cut and all(r["status"] == "stopped" and r["reports"] < 60 for r in cut)
    assert report["sweep"]["signatures"]["cut"] == len(cut)
    study = optuna.load_study(study_name=report["study"], storage=report["storage"])
    for run in cut:
        trial = study.trials[run["trial"]]
        assert trial.state == optuna.trial.TrialState.FAIL and "cut" in trial.user_attrs
