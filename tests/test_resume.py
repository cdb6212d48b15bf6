"""`rescue resume`: the supervisor's state rebuilt from an output folder (no Ray), the loop
going on from it, and (integration) a real rescue SIGKILLed mid-run and resumed."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from process_kill import kill_all
from rescue.cli.main import main
from rescue.config import load_config
from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord
from rescue.engine.resume import (
    Progress,
    ResumeError,
    load_saved,
    resume_entry,
    set_aside,
)
from rescue.policy import Evidence, Observation, Side, load_policy
from rescue.search.study import RescueStudy, default_storage

SCRIPTS = Path(__file__).parent / "scripts"
CFG = """\
params: {lr: 0.9, steps: 300, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
budget: {restarts: 3}
"""


def _progress(**changes: Any) -> Progress:
    evidence = Evidence(
        [Observation(0, {"lr": 0.9, "init": 0}, False, "divergence", Side.HIGH, True, "x", 1.5)]
    )
    values = dict(
        next_run=1,
        config={"lr": 0.9, "steps": 300},
        search={"lr": FloatDistribution(0.009, 0.45, log=True), "w": IntDistribution(1, 8)},
        evidence=evidence,
        tried=Counter({("divergence", "lr_cut"): 1}),
        spent_seconds=12.5,
    )
    return Progress(**{**values, **changes})


def test_progress_survives_report_json_exactly():
    progress = _progress(resume_from="/ckpt/3")
    back = Progress.from_dict(json.loads(json.dumps(progress.to_dict())))
    assert back.search == progress.search  # Optuna distributions, not their repr
    assert back.evidence == progress.evidence  # values (0, not "0"), sides, everything
    assert back.tried == Counter({("divergence", "lr_cut"): 1})
    assert (back.next_run, back.config, back.resume_from) == (1, progress.config, "/ckpt/3")
    assert back.spent_seconds == 12.5


def _write_rescue(out: Path, *, in_flight: bool, outcome: str = "running", **progress) -> dict:
    """An output folder as the supervisor leaves it: run 0 stopped with its remedy, and run 1
    either in flight (saved at its start) or not started yet (saved at run 0's end)."""
    report = RescueReport(
        script=str(SCRIPTS / "sgd_regression.py"),
        config_file=str(out / "cfg.yaml"),
        out=str(out),
        storage=default_storage(out),
        study="rescue-out",
        outcome=outcome,
    )
    first = RunRecord(run=0, config={"lr": 0.9, "steps": 300}, status="stopped", reports=3)
    first.trial, first.seconds, first.final_metrics = 0, 4.2, {"loss": float("nan")}
    first.findings = [Finding("non_finite", "loss", 2, "loss became nan", evidence={"x": 1})]
    first.remedy = {"name": "lr_cut", "for": "non_finite", "changes": {"lr": [0.9, 0.05]}}
    first.checkpoints = [(1, "/ray/run-000/checkpoint_000000")]
    report.runs.append(first)
    (out / "runs" / "run-000").mkdir(parents=True)
    (out / "runs" / "run-000" / "metrics.jsonl").write_text(
        '{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 3.0}\n{"step": 2, "loss": NaN}\n'
    )
    if in_flight:
        report.runs.append(RunRecord(run=1, config={"lr": 0.05, "steps": 300}, trial=1))
        (out / "runs" / "run-001").mkdir(parents=True)
        (out / "runs" / "run-001" / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n' * 4)
        (out / "runs" / "run-001" / "stdout.log").write_text("training\n")
        pending = _progress(config={"lr": 0.05, "steps": 300}, search={}, **progress)
    else:
        pending = _progress(next_run=1, config={"lr": 0.9, "steps": 300}, **progress)
    report.resume = resume_entry(pending, "train", None, 7, None)
    report.write(out / "report.json")
    return json.loads((out / "report.json").read_text())


def test_a_run_in_flight_is_restarted_with_its_config_and_its_files_are_kept(tmp_path):
    out = tmp_path / "out"
    before = _write_rescue(out, in_flight=True)
    saved = load_saved(out)
    assert not saved.ended and saved.seed == 7 and saved.entry == "train"
    assert saved.interrupted is not None and saved.interrupted.run == 1
    # The finished run is kept exactly as recorded, the run in flight left for the restart.
    assert [r.to_dict() for r in saved.report.runs] == [
        RunRecord.from_dict(before["runs"][0]).to_dict()
    ]
    progress = saved.progress
    assert progress.next_run == 1 and progress.search == {}
    assert progress.config == before["runs"][1]["config"]
    assert progress.tried == Counter({("divergence", "lr_cut"): 1})
    assert progress.spent_seconds == 12.5
    assert progress.resumed == {
        "how": "fresh",
        "why": "the supervisor stopped during this run",
        "interrupted_trial": 1,
        "reports_before": 4,
        "kept": "runs/run-001/interrupted-1",
        "checkpoint": None,
        "report": None,
    }
    assert progress.continued is None
    run0 = (out / "runs" / "run-000" / "metrics.jsonl").read_bytes()
    kept = set_aside(saved)
    assert kept == out / "runs" / "run-001" / "interrupted-1"
    assert sorted(p.name for p in kept.iterdir()) == ["metrics.jsonl", "stdout.log"]
    assert [p.name for p in (out / "runs" / "run-001").iterdir()] == ["interrupted-1"]
    assert (out / "runs" / "run-000" / "metrics.jsonl").read_bytes() == run0


def test_a_second_interruption_of_the_same_run_is_kept_beside_the_first(tmp_path):
    out = tmp_path / "out"
    _write_rescue(out, in_flight=True)
    (out / "runs" / "run-001" / "interrupted-1").mkdir()
    saved = load_saved(out)
    assert saved.progress.resumed["kept"] == "runs/run-001/interrupted-2"
    set_aside(saved)
    assert (out / "runs" / "run-001" / "interrupted-1").is_dir()
    assert (out / "runs" / "run-001" / "interrupted-2" / "metrics.jsonl").is_file()


def test_a_run_that_started_from_a_checkpoint_restarts_from_it(tmp_path):
    out = tmp_path / "out"
    _write_rescue(out, in_flight=True, resume_from="/ray/run-000/checkpoint_000000")
    saved = load_saved(out)
    assert saved.progress.resume_from == "/ray/run-000/checkpoint_000000"
    assert saved.progress.resumed["how"] == "checkpoint"


def _checkpoint(folder: Path, step: int, *, cut: bool = False) -> str:
    """A checkpoint folder as Ray Tune leaves it, its file whole or cut short by a kill."""
    import torch

    folder.mkdir(parents=True)
    torch.save({"step": step}, folder / "checkpoint.pt")
    if cut:
        data = (folder / "checkpoint.pt").read_bytes()
        (folder / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    return str(folder)


def _in_flight_with_checkpoints(out: Path, checkpoints: list[tuple[int, str]]) -> None:
    """Run 1 of ``_write_rescue`` in flight with the checkpoints its record lists, after six
    reports and a seventh cut short by the kill."""
    data = json.loads((out / "report.json").read_text())
    data["runs"][1]["checkpoints"] = checkpoints
    (out / "report.json").write_text(json.dumps(data))
    rows = [json.dumps({"step": i, "loss": 1.0 / (i + 1), "epoch": float(i)}) for i in range(6)]
    (out / "runs" / "run-001" / "metrics.jsonl").write_text("\n".join(rows) + '\n{"step": 6, "lo')


def test_a_run_in_flight_goes_on_from_its_last_whole_checkpoint(tmp_path):
    from rescue.cli.main import _resume_line

    out = tmp_path / "out"
    _write_rescue(out, in_flight=True)
    trial = out / "ray" / "run-001" / "run_user_train_0_2026"
    first = _checkpoint(trial / "checkpoint_000000", 1)
    last = _checkpoint(trial / "checkpoint_000001", 3)
    cut = _checkpoint(trial / "checkpoint_000002", 4, cut=True)
    (trial / "checkpoint_000003").mkdir()  # the copy had not begun
    beyond = _checkpoint(trial / "checkpoint_000004", 6)  # its report's line was cut short
    listed = [(1, first), (3, last), (4, cut), (5, str(trial / "checkpoint_000003")), (6, beyond)]
    _in_flight_with_checkpoints(out, listed)

    saved = load_saved(out)
    progress = saved.progress
    assert progress.resume_from == last
    assert progress.resumed["how"] == "last_checkpoint"
    assert progress.resumed["checkpoint"] == last and progress.resumed["report"] == 4
    assert progress.resumed["reports_before"] == 7
    # Reports 1-4 are replayed as recorded; the checkpoints up to then are the run's.
    assert progress.continued is not None
    assert progress.continued.reports == [
        {"loss": 1.0 / (i + 1), "epoch": float(i)} for i in range(4)
    ]
    assert progress.continued.checkpoints == [(1, first), (3, last)]
    line = _resume_line(saved, [1])
    assert "restarted from its last checkpoint (report 4) with the same config" in line


def test_the_checkpoints_of_a_moved_folder_are_found_where_it_is(tmp_path):
    out = tmp_path / "out"
    _write_rescue(out, in_flight=True)
    folder = out / "ray" / "run-001" / "trial" / "checkpoint_000000"
    _in_flight_with_checkpoints(out, [(2, _checkpoint(folder, 2))])
    (tmp_path / "out").rename(tmp_path / "moved")
    saved = load_saved(tmp_path / "moved")
    moved = (tmp_path / "moved").resolve() / "ray" / "run-001" / "trial" / "checkpoint_000000"
    assert saved.progress.resume_from == str(moved) and saved.progress.resumed["report"] == 3


@pytest.mark.parametrize("started_from", [None, "/ray/run-000/checkpoint_000000"])
def test_without_a_whole_checkpoint_the_run_restarts_as_it_started(tmp_path, started_from):
    out = tmp_path / "out"
    _write_rescue(out, in_flight=True, resume_from=started_from)
    trial = out / "ray" / "run-001" / "trial"
    _in_flight_with_checkpoints(out, [(2, _checkpoint(trial / "checkpoint_000000", 2, cut=True))])
    progress = load_saved(out).progress
    assert progress.resumed["how"] == ("checkpoint" if started_from else "fresh")
    assert progress.resume_from == progress.resumed["checkpoint"] == started_from
    assert progress.resumed["report"] is None and progress.continued is None


def test_a_checkpoint_is_heard_of_from_the_result_that_carried_it():
    """Ray Tune's result names the checkpoint folder its report saved (the worker sets it once
    the folder is in storage); the runner passes its location on, a URI for a URI storage."""
    from types import SimpleNamespace

    from rescue.engine.experiment import _LoopCallback
    from rescue.engine.ray_runner import RayRunner

    heard: list[tuple[int, str]] = []

    class Loop:
        def checkpointed(self, key, report, path):
            assert key == "t1"
            heard.append((report, path))

    # Tune names a trial's folder by its path in the storage's file system, without a scheme.
    for storage, trial_path, expected in [
        ("/store", "/store/run-001/trial_a", "/store/run-001/trial_a/checkpoint_000001"),
        (
            "s3://bkt/store",
            "bkt/store/run-001/trial_a",
            "s3://bkt/store/run-001/trial_a/checkpoint_000001",
        ),
    ]:
        heard.clear()
        locate = RayRunner(storage).checkpoint_uri
        events = _LoopCallback(Loop(), locate=locate)
        trial = SimpleNamespace(path=trial_path, trial_id="t1")
        events.on_trial_result(0, [], trial, {"training_iteration": 3, "loss": 1.0})
        events.on_trial_result(
            0, [], trial, {"training_iteration": 4, "checkpoint_dir_name": "checkpoint_000001"}
        )
        events.on_trial_result(0, [], trial, {"training_iteration": 5, "checkpoint_dir_name": None})
        assert heard == [(3, expected)]  # the 0-based report that carried it
    inert = pickle.loads(pickle.dumps(events))  # Tune pickles its run config
    assert inert.loop is None


def test_between_runs_the_pending_remedy_is_taken_up_as_saved(tmp_path):
    out = tmp_path / "out"
    _write_rescue(out, in_flight=False)
    saved = load_saved(out)
    assert saved.interrupted is None and len(saved.report.runs) == 1
    assert saved.progress.next_run == 1 and saved.progress.resumed is None
    assert saved.progress.search["lr"] == FloatDistribution(0.009, 0.45, log=True)
    assert set_aside(saved) is None


def test_the_default_study_file_moves_with_the_folder(tmp_path):
    _write_rescue(tmp_path / "out", in_flight=False)
    (tmp_path / "out").rename(tmp_path / "moved")
    saved = load_saved(tmp_path / "moved")
    assert saved.report.storage == default_storage(tmp_path / "moved")
    assert saved.report.out == str((tmp_path / "moved").resolve())


def test_an_ended_rescue_says_so_with_its_exit_code(tmp_path, capsys):
    out = tmp_path / "out"
    _write_rescue(out, in_flight=False, outcome="not_rescued")
    assert load_saved(out).ended
    assert main(["resume", str(out)]) == 3
    assert "not_rescued: the rescue already ended" in capsys.readouterr().out


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda out: None, "no such folder"),
        (lambda out: out.mkdir(), "it has no report.json"),
        (lambda out: (out.mkdir(), (out / "report.json").write_text("{")), "valid JSON"),
        (
            lambda out: (out.mkdir(), (out / "report.json").write_text('{"outcome": "running"}')),
            "expected a `resume` entry",
        ),
        (
            lambda out: (out.mkdir(), (out / "report.json").write_text('{"resume": {"x": 1}}')),
            "expected the resume state",
        ),
    ],
)
def test_a_bad_folder_is_one_line_and_exit_code_2(tmp_path, capsys, setup, message):
    out = tmp_path / "out"
    setup(out)
    with pytest.raises(ResumeError, match=message):
        load_saved(out)
    assert main(["resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rescue: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_trials_left_open_by_a_killed_supervisor_are_failed(tmp_path, kind):
    url = default_storage(tmp_path) if kind == "sqlite" else f"journal:{tmp_path / 'j.log'}"
    cfg = load_config(_cfg(tmp_path))
    study = RescueStudy(url, "rescue-out", seed=0)
    done, _ = study.ask(cfg.knobs, {"lr": 0.9})
    study.finish(done, TrialState.PRUNED, 3.0, [1.0, 3.0], {"run": 0}, healthy=False)
    study.ask(cfg.knobs, {"lr": 0.05})  # the run in flight
    study.study.enqueue_trial({"lr": 0.5})  # enqueued, never asked

    again = RescueStudy(url, "rescue-out", seed=0, load=True)
    assert again.close_interrupted("stopped") == [1, 2]
    states = [t.state for t in again.trials()]
    assert states == [TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL]
    assert again.trials()[1].user_attrs["interrupted"] == "stopped"
    # The next run gets exactly the values asked for, not the stale enqueued ones.
    trial, values = again.ask(cfg.knobs, {"lr": 0.05})
    assert values == {"lr": 0.05} and trial.number == 3


def _cfg(folder: Path, text: str = CFG) -> Path:
    path = folder / "cfg.yaml"
    path.write_text(text)
    return path


# --- the loop going on from a rebuilt state, with a scripted runner instead of Ray -----------


class Killed(BaseException):
    """The supervisor process dying mid-run."""


class ScriptedRunner:
    """Reports a loss that turns NaN above lr 0.5 and falls below 0.05 otherwise; ``kill_at``
    kills the supervisor after that many reports of the given run."""

    address = None

    def __init__(self, kill_at: tuple[int, int] | None = None) -> None:
        self.kill_at, self.calls = kill_at, []

    def lane(self, script, entry, command, judge):
        return self  # the monitor judges the reports

    def run(self, request):
        from rescue.engine.lane import Execution

        name, config, monitor = Path(request.log_dir).name, request.params, request.monitor
        resume_from = request.resume_from
        self.calls.append((name, dict(config), resume_from))
        run = int(name.split("-")[1])
        for step in range(20):
            if self.kill_at == (run, step):
                raise Killed
            loss = float("nan") if config["lr"] > 0.5 and step > 2 else 1.0 / (step + 1) ** 2
            if monitor.on_report({"loss": loss}):
                return Execution("stopped")
        return Execution("completed")


class Silent:
    def run_started(self, record, changes): ...
    def reported(self, step, metrics, findings): ...
    def run_ended(self, record): ...
    def finished(self, report): ...


def _supervisor(out: Path, runner: ScriptedRunner, saved=None):
    from rescue.engine.supervisor import Job, Supervisor

    cfg_file = out / "cfg.yaml"
    config = load_config(cfg_file)
    study = RescueStudy(default_storage(out), "rescue-out", seed=0, load=True)
    if saved is not None:
        study.close_interrupted("stopped")
        set_aside(saved)
    job = Job(SCRIPTS / "sgd_regression.py", "train", config, cfg_file)
    policy = load_policy("default")
    supervisor = Supervisor(job, policy, runner, study, out, Silent(), saved and saved.report)
    supervisor._render = lambda: None  # the page is tested elsewhere
    return supervisor, study


def test_the_loop_goes_on_from_a_run_killed_in_flight(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _cfg(out)
    supervisor, _ = _supervisor(out, ScriptedRunner(kill_at=(1, 5)))
    with pytest.raises(Killed):
        supervisor.rescue()
    before = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in before["runs"]] == ["stopped", "running"]
    run0_metrics = (out / "runs" / "run-000" / "metrics.jsonl").read_bytes()

    saved = load_saved(out)
    runner = ScriptedRunner()
    supervisor, study = _supervisor(out, runner, saved)
    report = supervisor.rescue(saved.progress)
    assert report.outcome == "rescued" and report.exit_code == 0
    # Run 0 is not repeated; run 1 is restarted once, with its config as it was.
    assert [name for name, _, _ in runner.calls] == ["run-001"]
    assert runner.calls[0][1] == before["runs"][1]["config"]
    after = json.loads((out / "report.json").read_text())
    assert after["runs"][0] == before["runs"][0]
    assert (out / "runs" / "run-000" / "metrics.jsonl").read_bytes() == run0_metrics
    assert after["runs"][1]["resumed"]["how"] == "fresh"
    assert after["runs"][1]["resumed"]["reports_before"] == 5
    assert after["runs"][1]["trial"] == 2 and after["runs"][1]["status"] == "completed"
    assert len((out / "runs" / "run-001" / "metrics.jsonl").read_text().splitlines()) == 20
    states = [t.state for t in study.trials()]
    assert states == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]


class CheckpointingRunner:
    """A script that saves a checkpoint every 4 reports, as Ray Tune runs it: the checkpoint
    folder (holding the step) is written before the report reaches the monitor, and listed
    at the end with the trial's report index. Given a checkpoint it goes on from the step
    after the saved one. The loss turns NaN above lr 0.5 and at the ``nan_at`` (run, step)s;
    ``kill_after`` kills the supervisor once that (run, step)'s report was watched."""

    address = None

    def __init__(self, ray: Path, kill_after=None, nan_at=(), steps: int = 20) -> None:
        self.ray, self.kill_after, self.nan_at, self.steps = ray, kill_after, set(nan_at), steps
        self.calls: list[tuple[str, str | None]] = []

    def lane(self, script, entry, command, judge):
        return self

    def run(self, request):
        name, config, monitor = Path(request.log_dir).name, request.params, request.monitor
        resume_from, on_checkpoint = request.resume_from, request.on_checkpoint
        import torch

        from rescue.engine.lane import Execution

        self.calls.append((name, resume_from))
        run = int(name.split("-")[1])
        trial = self.ray / name / f"trial_{len(self.calls)}"
        trial.mkdir(parents=True)
        first = 0
        if resume_from is not None:
            first = torch.load(Path(resume_from) / "checkpoint.pt")["step"] + 1
        checkpoints: list[tuple[int, str]] = []
        for index, step in enumerate(range(first, self.steps)):
            if step % 4 == 3:
                folder = trial / f"checkpoint_{len(checkpoints):06d}"
                folder.mkdir()
                torch.save({"step": step}, folder / "checkpoint.pt")
                checkpoints.append((index, str(folder)))
            diverged = (config["lr"] > 0.5 and step > 2) or (run, step) in self.nan_at
            loss = float("nan") if diverged else 1.0 / (step + 1) ** 2
            stop = monitor.on_report({"loss": loss, "epoch": float(step)})
            if checkpoints and checkpoints[-1][0] == index:  # as Tune's result names it
                on_checkpoint(*checkpoints[-1])
            if self.kill_after == (run, step):
                raise Killed
            if stop:
                return Execution("stopped", None, checkpoints)
        return Execution("completed", None, checkpoints)


def _saved_step(path: str) -> int:
    import torch

    return torch.load(Path(path) / "checkpoint.pt")["step"]


def test_the_loop_goes_on_from_the_last_checkpoint_of_a_run_killed_in_flight(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _cfg(out)
    supervisor, _ = _supervisor(out, CheckpointingRunner(out / "ray", kill_after=(1, 9)))
    with pytest.raises(Killed):
        supervisor.rescue()
    before = json.loads((out / "report.json").read_text())
    # The checkpoints of the run in flight are in its record as they appeared.
    assert [step for step, _ in before["runs"][1]["checkpoints"]] == [3, 7]
    assert [_saved_step(p) for _, p in before["runs"][1]["checkpoints"]] == [3, 7]
    interrupted = (out / "runs" / "run-001" / "metrics.jsonl").read_text().splitlines()

    saved = load_saved(out)
    runner = CheckpointingRunner(out / "ray")
    supervisor, study = _supervisor(out, runner, saved)
    report = supervisor.rescue(saved.progress)
    assert report.outcome == "rescued"
    last = before["runs"][1]["checkpoints"][-1][1]
    assert runner.calls == [("run-001", last)]  # trained on from the checkpoint of report 8
    run1 = json.loads((out / "report.json").read_text())["runs"][1]
    assert run1["resumed"]["how"] == "last_checkpoint" and run1["resumed"]["report"] == 8
    assert run1["status"] == "completed" and run1["reports"] == 20
    rows = [json.loads(line) for line in (out / "runs" / "run-001" / "metrics.jsonl").open()]
    # One run: reports 1-8 replayed as they were, 9-20 from the training that went on.
    assert [r["step"] for r in rows] == [r["metrics"]["epoch"] for r in rows] == list(range(20))
    assert [json.dumps(r) for r in rows[:8]] == interrupted[:8]
    assert (out / run1["resumed"]["kept"] / "metrics.jsonl").read_text().splitlines() == interrupted
    # The run's checkpoints are numbered by the run's reports, not by the attempt's.
    assert [step for step, _ in run1["checkpoints"]] == [3, 7, 11, 15, 19]
    assert all(_saved_step(path) == step for step, path in run1["checkpoints"])
    states = [t.state for t in study.trials()]
    assert states == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]


@pytest.mark.parametrize("ending", ["length", "finding"])
def test_a_run_the_replay_ends_is_not_trained_again(tmp_path, ending):
    """Killed after the report that ended the run (its length reached, or a NaN loss) and
    saved the checkpoint it goes on from: the replay alone ends it, as it ended then."""
    out = tmp_path / "out"
    out.mkdir()
    _cfg(out, CFG.replace("restarts: 3}", "restarts: 3, reports_per_run: 8}"))
    nan_at = {(1, 7)} if ending == "finding" else set()
    killed = CheckpointingRunner(out / "ray", kill_after=(1, 7), nan_at=nan_at)
    supervisor, _ = _supervisor(out, killed)
    with pytest.raises(Killed):
        supervisor.rescue()

    saved = load_saved(out)
    assert saved.progress.resumed["report"] == 8
    runner = CheckpointingRunner(out / "ray", nan_at=nan_at)
    supervisor, _ = _supervisor(out, runner, saved)
    report = supervisor.rescue(saved.progress)
    run1 = report.runs[1]
    assert run1.reports == 8
    assert len((out / "runs" / "run-001" / "metrics.jsonl").read_text().splitlines()) == 8
    if ending == "length":
        assert runner.calls == [] and report.outcome == "rescued"
        assert run1.status == "completed" and run1.met_success and run1.verdict is None
    else:
        assert [name for name, _ in runner.calls] == ["run-002"]
        assert run1.status == "stopped"
        assert [(f.signature, f.step) for f in run1.findings] == [("non_finite", 7)]


# --- integration: a real rescue SIGKILLed mid-run, then resumed ------------------------------

SLOW_DIVERGING = """\
params: {lr: 0.9, steps: 4000, seed: 0, report_every: 50}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
budget: {restarts: 3}
"""


CLI = [sys.executable, "-m", "rescue.cli.main"]
ENV = {**os.environ, "RAY_CHDIR_TO_TRIAL_DIR": "0"}


def _kill_during(script: str, cfg: Path, out: Path, in_flight: Path, reports: int) -> None:
    """Start a real rescue and SIGKILL it, Ray's processes with it, once ``in_flight`` (a
    run's metrics.jsonl) holds ``reports`` reports."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [*CLI, script, "--config", str(cfg), "--out", str(out), "-q"],
        start_new_session=True,
        env=ENV,
    )
    try:
        while not (in_flight.is_file() and len(in_flight.read_text().splitlines()) >= reports):
            assert proc.poll() is None, "the rescue ended before it could be killed"
            assert time.monotonic() - started < 300, "the run never reported"
            time.sleep(0.05)
    finally:
        kill_all(proc)


@pytest.mark.integration
def test_a_killed_rescue_is_resumed_without_losing_or_repeating_anything(tmp_path):
    cfg, out = _cfg(tmp_path, SLOW_DIVERGING), tmp_path / "out"
    in_flight = out / "runs" / "run-001" / "metrics.jsonl"
    _kill_during(str(SCRIPTS / "sgd_regression.py"), cfg, out, in_flight, reports=5)

    before = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in before["runs"]] == ["stopped", "running"]
    run0_metrics = (out / "runs" / "run-000" / "metrics.jsonl").read_bytes()
    seen = len(in_flight.read_text().splitlines())

    resumed = subprocess.run(
        [*CLI, "resume", str(out)], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "run 1 was in flight" in resumed.stdout
    after = json.loads((out / "report.json").read_text())
    assert after["outcome"] == "rescued"
    assert after["runs"][0] == before["runs"][0]  # run 0's record, as it was
    assert (out / "runs" / "run-000" / "metrics.jsonl").read_bytes() == run0_metrics
    assert len(after["runs"]) == 2  # run 0 not repeated
    run1 = after["runs"][1]
    assert run1["config"] == before["runs"][1]["config"]
    assert run1["status"] == "completed" and run1["met_success"]
    assert run1["resumed"]["how"] == "fresh" and run1["resumed"]["reports_before"] >= seen
    kept = out / run1["resumed"]["kept"] / "metrics.jsonl"
    assert len(kept.read_text().splitlines()) >= seen  # the interrupted attempt's metrics
    assert len(in_flight.read_text().splitlines()) == run1["reports"] == 80

    study = optuna.load_study(study_name=after["study"], storage=after["storage"])
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].number == run1["resumed"]["interrupted_trial"]

    again = subprocess.run([*CLI, "resume", str(out)], env=ENV, capture_output=True, text=True)
    assert again.returncode == 0 and "already ended" in again.stdout


CHECKPOINTING = """\
params: {lr: 0.05, epochs: 20, checkpoint_every: 5, epoch_seconds: 0.15, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
budget: {restarts: 1}
"""


@pytest.mark.integration
def test_a_killed_rescue_goes_on_from_the_last_checkpoint_of_its_run(tmp_path):
    import torch

    cfg, out = _cfg(tmp_path, CHECKPOINTING), tmp_path / "out"
    metrics = out / "runs" / "run-000" / "metrics.jsonl"
    _kill_during(str(SCRIPTS / "checkpointed_sgd.py"), cfg, out, metrics, reports=7)
    before = json.loads((out / "report.json").read_text())["runs"][0]
    # Recorded as they appeared: Ray Tune's result.json was not yet in OUT/ray.
    assert before["status"] == "running" and before["checkpoints"][0][0] == 4
    interrupted = [json.loads(line) for line in metrics.read_text().splitlines()]

    resumed = subprocess.run(
        [*CLI, "resume", str(out)], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((out / "report.json").read_text())
    run = after["runs"][0]
    note = run["resumed"]
    report = note["report"]
    assert f"restarted from its last checkpoint (report {report})" in resumed.stdout
    assert after["outcome"] == "healthy" and run["status"] == "completed" and run["met_success"]
    assert note["how"] == "last_checkpoint" and note["checkpoint"] == before["checkpoints"][-1][1]
    assert report % 5 == 0 and report < len(interrupted)

    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    # One run, no report lost or repeated: the epochs the script reported go on from the
    # checkpoint's (a fresh start would report epoch 0 again after the replayed ones).
    assert [r["step"] for r in rows] == [r["metrics"]["epoch"] for r in rows] == list(range(20))
    assert run["reports"] == 20
    assert rows[:report] == interrupted[:report]  # replayed as recorded
    # Training went on from the checkpoint's model, optimizer and random state: the reports
    # after it are the ones the killed attempt made.
    for again, first in zip(rows[report:], interrupted[report:]):
        assert again["metrics"]["loss"] == pytest.approx(first["metrics"]["loss"], rel=1e-6)
    kept = out / note["kept"] / "metrics.jsonl"
    assert [json.loads(line) for line in kept.read_text().splitlines()] == interrupted
    # The run's checkpoints, its own and the killed attempt's, by the run's report.
    assert [step for step, _ in run["checkpoints"]] == [4, 9, 14, 19]
    for step, path in run["checkpoints"]:
        assert torch.load(Path(path) / "checkpoint.pt", weights_only=False)["epoch"] == step

    study = optuna.load_study(study_name=after["study"], storage=after["storage"])
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
