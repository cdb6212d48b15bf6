"""`rescue resume`: the supervisor's state rebuilt from an output folder (no Ray), the loop
going on from it, and (integration) a real rescue SIGKILLed mid-run and resumed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
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

from rescue.cli import main
from rescue.config import load_config
from rescue.findings import Finding
from rescue.policy import load_policy
from rescue.record import RescueReport, RunRecord
from rescue.remedies import Lessons
from rescue.resume import Progress, ResumeError, load_saved, resume_entry, set_aside
from rescue.study import RescueStudy, default_storage

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
    lessons = Lessons(upper={"lr": 0.9}, excluded={"init": {"zeros", 0, True}})
    values = dict(
        next_run=1,
        config={"lr": 0.9, "steps": 300},
        search={"lr": FloatDistribution(0.009, 0.45, log=True), "w": IntDistribution(1, 8)},
        lessons=lessons,
        tried=Counter({("divergence", "lr_cut"): 1}),
        spent_seconds=12.5,
    )
    return Progress(**{**values, **changes})


def test_progress_survives_report_json_exactly():
    progress = _progress(resume_from="/ckpt/3")
    back = Progress.from_dict(json.loads(json.dumps(progress.to_dict())))
    assert back.search == progress.search  # Optuna distributions, not their repr
    assert back.lessons.excluded == {"init": {"zeros", 0, True}}  # values, not strings
    assert back.lessons.upper == {"lr": 0.9}
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
    }
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

    def run(self, name, script, entry, config, watcher, resume_from, command, log_dir):
        from rescue.ray_runner import Execution

        self.calls.append((name, dict(config), resume_from))
        run = int(name.split("-")[1])
        for step in range(20):
            if self.kill_at == (run, step):
                raise Killed
            loss = float("nan") if config["lr"] > 0.5 and step > 2 else 1.0 / (step + 1) ** 2
            if watcher.on_report({"loss": loss}):
                return Execution("stopped")
        return Execution("completed")


class Silent:
    def run_started(self, record, changes): ...
    def reported(self, step, metrics, findings): ...
    def run_ended(self, record): ...
    def finished(self, report): ...


def _supervisor(out: Path, runner: ScriptedRunner, saved=None):
    from rescue.supervisor import Job, Supervisor

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


# --- integration: a real rescue SIGKILLed mid-run, then resumed ------------------------------

SLOW_DIVERGING = """\
params: {lr: 0.9, steps: 30000, seed: 0, report_every: 100}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
budget: {restarts: 3}
"""


def _descendants(pid: int) -> set[int]:
    """Every process started (transitively) by ``pid``, Ray's workers included."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited, only its parent has not reaped it yet


@pytest.mark.integration
def test_a_killed_rescue_is_resumed_without_losing_or_repeating_anything(tmp_path):
    started = time.monotonic()
    cfg, out = _cfg(tmp_path, SLOW_DIVERGING), tmp_path / "out"
    cli = [sys.executable, "-m", "rescue.cli"]
    env = {**os.environ, "RAY_CHDIR_TO_TRIAL_DIR": "0"}
    script = str(SCRIPTS / "sgd_regression.py")
    proc = subprocess.Popen(
        [*cli, script, "--config", str(cfg), "--out", str(out), "-q"],
        start_new_session=True,
        env=env,
    )
    in_flight = out / "runs" / "run-001" / "metrics.jsonl"
    try:
        while not (in_flight.is_file() and len(in_flight.read_text().splitlines()) >= 5):
            assert proc.poll() is None, "the rescue ended before it could be killed"
            assert time.monotonic() - started < 60, "run 1 never reported"
            time.sleep(0.1)
    finally:
        started_by_it = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in started_by_it:  # Ray's workers run in sessions of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in started_by_it) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in started_by_it)

    before = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in before["runs"]] == ["stopped", "running"]
    run0_metrics = (out / "runs" / "run-000" / "metrics.jsonl").read_bytes()
    seen = len(in_flight.read_text().splitlines())

    resumed = subprocess.run(
        [*cli, "resume", str(out)], env=env, capture_output=True, text=True, timeout=120
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
    assert len(in_flight.read_text().splitlines()) == run1["reports"] == 300

    study = optuna.load_study(study_name=after["study"], storage=after["storage"])
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].number == run1["resumed"]["interrupted_trial"]

    again = subprocess.run([*cli, "resume", str(out)], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "already ended" in again.stdout
    assert time.monotonic() - started < 90
