"""`rescue resume` on a sweep: the loop taken over from its report.json and study (no Ray), and
(integration) a real `rescue sweep` SIGKILLed mid-trial and resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from process_kill import kill_all
from rescue.cli.main import main
from rescue.config import load_config
from rescue.engine.resume import SweepResume, interrupted_note, load_sweep
from rescue.engine.sweep import SweepLoop, SweepReport, choose_objective
from rescue.errors import RescueError
from rescue.policy import load_policy
from rescue.search.study import SweepStudy, default_storage
from scripted_lane import HandTrial
from test_sweep import CFG, Silent, fake_losses

SCRIPTS = Path(__file__).parent / "scripts"
LR_ONLY = CFG.split("search:")[0] + "success:\n  loss: {below: 0.05}\n"


def _start(
    out: Path, cfg_path: Path, n: int, rescue_sick: bool = False, storage: str | None = None
) -> SweepLoop:
    """A sweep as `rescue sweep` starts it, on the default SQLite storage in ``out`` or on a
    shared ``storage`` (joining its study, as `--study` does)."""
    cfg = load_config(cfg_path)
    objective = choose_objective(cfg)
    resume = SweepResume(trials=n, parallel=1, seed=0, rescue_sick=rescue_sick)
    report = SweepReport(
        script=str(SCRIPTS / "sgd_regression.py"),
        config_file=str(cfg_path),
        out=str(out),
        storage=storage or default_storage(out),
        study="sweep-out",
        resume=resume.to_dict(),
    )
    study = SweepStudy(
        report.storage,
        "sweep-out",
        objective.mode,
        n,
        seed=0,
        load=storage is not None,
        owner=resume.sweep_id,
    )
    policy = load_policy("default")
    return SweepLoop(cfg, policy, study, objective, n, out, report, Silent(), rescue_sick)


def _take_over(out: Path) -> tuple[SweepLoop, list, list[int]]:
    """What `rescue resume` does with the folder, without Ray."""
    saved = load_sweep(out)
    report, resume = saved.report, saved.resume
    cfg = load_config(Path(report.config_file))
    study = SweepStudy(
        report.storage,
        report.study,
        report.objective.mode,
        resume.trials,
        seed=0,
        load=True,
        owner=resume.sweep_id,
    )
    closed = study.close_interrupted("killed")
    loop = SweepLoop(
        cfg,
        load_policy("default"),
        study,
        report.objective,
        resume.trials,
        out,
        report,
        Silent(),
        resume.rescue_sick,
    )
    again = loop.take_over(lambda trial: interrupted_note(out, trial))
    return loop, again, closed


def _run_trial(loop: SweepLoop, key: str, stop_after: int | None = None) -> dict | None:
    """One trial as a lane runs it; ``stop_after``: the supervisor dies after that many
    reports, before the trial ends. (``key`` names the call in the test.)"""
    trial = HandTrial(loop)
    if trial.config is None:
        return None
    for i, metrics in enumerate(fake_losses(trial.config)):
        if stop_after is not None and i == stop_after:
            return trial.config
        if trial.report(metrics):
            break
    trial.end()
    return trial.config


def test_a_killed_sweep_goes_on_without_losing_or_repeating_a_trial(tmp_path, write_cfg):
    out = tmp_path / "out"
    out.mkdir()
    loop = _start(out, write_cfg(LR_ONLY), 8)
    for i in range(3):
        _run_trial(loop, f"t{i}")
    in_flight = _run_trial(loop, "t3", stop_after=7)  # the supervisor dies here
    before = json.loads((out / "report.json").read_text())
    assert [r["outcome"] for r in before["runs"]][3] == "running"

    loop, again, closed = _take_over(out)
    assert [t.run for t in again] == [3] and closed == [3]
    assert again[0].resumed["reports_before"] == 7
    kept = out / again[0].resumed["kept"] / "metrics.jsonl"
    assert len(kept.read_text().splitlines()) == 7  # the interrupted attempt's reports
    i = 0
    while _run_trial(loop, f"r{i}") is not None:
        i += 1
    assert i == 5  # trial 3 again, then trials 4-7
    report = loop.result()

    after = json.loads((out / "report.json").read_text())
    assert after["runs"][:3] == before["runs"][:3]  # ended trials kept as recorded
    assert [r["run"] for r in after["runs"]] == list(range(8))
    rerun = after["runs"][3]
    assert rerun["config"] == in_flight and rerun["outcome"] != "running"
    assert rerun["resumed"]["interrupted_trial"] == 3 and rerun["trial"] == 4  # run first
    metrics = out / "runs" / "run-003" / "metrics.jsonl"
    assert len(metrics.read_text().splitlines()) == rerun["reports"]
    assert sum(after["sweep"]["signatures"].values()) == 8 == len(after["trials"])
    assert report.outcome == "healthy"

    study = optuna.load_study(study_name="sweep-out", storage=default_storage(out))
    states = [t.state for t in study.trials]
    assert len(states) == 9 and states[3] == TrialState.FAIL
    assert study.trials[3].user_attrs["interrupted"] == "killed"
    assert study.trials[4].params == study.trials[3].params  # the same params, run again
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states


def test_a_rescue_queued_when_the_supervisor_died_is_still_run(tmp_path, write_cfg):
    out = tmp_path / "out"
    out.mkdir()
    loop = _start(out, write_cfg(LR_ONLY), 6, rescue_sick=True)
    i = 0
    while True:  # until a trial is diagnosed and its rescue queued
        _run_trial(loop, f"t{i}")
        i += 1
        if loop.rescues:
            break
        assert i < 6, "no trial sampled the failure region"
    parent = loop.rescues[0][0]

    loop, again, _ = _take_over(out)
    assert again == [] and [p.run for p, _ in loop.rescues] == [parent.run]
    _run_trial(loop, "next")
    child = loop.report.runs[-1]
    assert child.rescue_of == parent.run
    assert child.config["lr"] < parent.config["lr"] / 2 + 1e-12  # the policy's lr cut


def test_sweeps_sharing_a_study_learn_together_and_resume_only_their_own_trials(
    tmp_path, write_cfg
):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    cfg = write_cfg(LR_ONLY)
    (a_out := tmp_path / "a").mkdir()
    (b_out := tmp_path / "b").mkdir()
    a = _start(a_out, cfg, 4, storage=storage)
    b = _start(b_out, cfg, 4, storage=storage)
    for i in range(3):
        _run_trial(a, f"a{i}")
        _run_trial(b, f"b{i}")
    _run_trial(a, "a3", stop_after=1)  # a's supervisor dies in its last trial...
    HandTrial(b).report({"loss": 0.4})  # ...while b's last trial is running

    shared = optuna.load_study(study_name="sweep-out", storage=storage)
    assert len(shared.trials) == 8  # each sampler saw the other sweep's trials
    assert [t.trial for t in a.report.runs] == [0, 2, 4, 6]
    assert [t.trial for t in b.report.runs] == [1, 3, 5, 7]

    a, again, closed = _take_over(a_out)
    assert closed == [6] and [t.run for t in again] == [3]  # b's running trial 7 left alone
    states = {
        t.number: t.state for t in optuna.load_study(study_name="sweep-out", storage=storage).trials
    }
    assert states[6] == TrialState.FAIL and states[7] == TrialState.RUNNING
    _run_trial(a, "again")
    assert a.report.runs[3].trial == 8 and a.report.runs[3].outcome != "running"


def sweep_on(storage: str, out: str, cfg: str, n: int) -> None:
    """One sweep process on a shared study (run by the test below in several processes)."""
    (folder := Path(out)).mkdir()
    deadline = time.monotonic() + 60
    while len(list(folder.parent.glob("s?"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # start together: they create the storage and study at once, too
    loop = _start(folder, Path(cfg), n, storage=storage)
    for i in range(n):
        _run_trial(loop, f"t{i}")
    loop.result()


@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgresql"])
def test_concurrent_sweeps_on_one_storage_lose_no_trial(tmp_path, write_cfg, kind, request):
    """Three processes run sweeps on one study at once, as Optuna documents for an RDB (the
    default SQLite file, a PostgreSQL server) or its journal file: every trial of every sweep
    is in the study once, finished."""
    storage = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'shared.db'}",
        "journal": lambda: f"journal:{tmp_path / 'shared.log'}",
        "postgresql": lambda: request.getfixturevalue("postgres_url"),
    }[kind]()
    cfg = write_cfg(LR_ONLY)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_sweep_resume as t; "
        "t.sweep_on(*sys.argv[2:5], int(sys.argv[5]))"
    )
    tests = str(Path(__file__).parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, tests, storage, str(tmp_path / f"s{i}"), str(cfg), "6"]
        )
        for i in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    reports = [json.loads((tmp_path / f"s{i}" / "report.json").read_text()) for i in range(3)]
    numbers = [r["trial"] for report in reports for r in report["runs"]]
    assert len(numbers) == 18 and len(set(numbers)) == 18  # no trial shared or lost
    study = SweepStudy(storage, "sweep-out", "min", 6, load=True).study
    assert sorted(t.number for t in study.trials) == sorted(numbers)
    states = [(t.number, t.state.name, t.user_attrs.get("status")) for t in study.trials]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials), states
    blocks = [[r["trial"] for r in report["runs"]] for report in reports]
    assert any(b != list(range(b[0], b[0] + 6)) for b in blocks)  # they did run side by side


OPEN_AT_ONCE = """\
import os, sys
from pathlib import Path
from rescue.search.study import open_storage
barrier, n = Path(sys.argv[2]), int(sys.argv[3])
(barrier / str(os.getpid())).touch()
while len(list(barrier.iterdir())) < n:
    pass  # spin: open at the same instant
open_storage(sys.argv[1])
"""


def _new_database(kind: str, folder: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'new.db'}"
    import psycopg2

    server = request.getfixturevalue("postgres_url")
    name = f"new_{folder.name.replace('-', '_')}"
    connection = psycopg2.connect(server.replace("postgresql+psycopg2", "postgresql"))
    connection.autocommit = True  # CREATE DATABASE runs outside a transaction
    connection.cursor().execute(f"CREATE DATABASE {name}")
    connection.close()
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_processes_creating_one_new_storage_at_once_all_open_it(tmp_path, kind, request):
    """Optuna's RDB storage creates its tables and stamps its schema version on first use;
    processes doing so at once collide (SQLite: UNIQUE constraint failed: alembic_version;
    PostgreSQL: relation "studies" already exists) unless the open is retried."""
    for attempt in range(3):
        barrier = tmp_path / f"barrier-{attempt}"
        barrier.mkdir()
        url = _new_database(kind, barrier, request)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AT_ONCE, url, str(barrier), "4"],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err


def test_joining_a_study_of_the_other_direction_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = SweepStudy(storage, "s", "min", 4)
    with pytest.raises(RescueError, match="minimizes its objective"):
        SweepStudy(storage, "s", "max", 4, load=True)
    # Empty, it is what a start killed before its first trial left: taken over.
    assert SweepStudy(storage, "s", "min", 4).study.trials == []
    first.study.ask()
    with pytest.raises(RescueError, match="exists already"):
        SweepStudy(storage, "s", "min", 4)


def test_the_resume_entry_records_how_the_sweep_was_started_and_the_time_spent(tmp_path, write_cfg):
    out = tmp_path / "out"
    out.mkdir()
    loop = _start(out, write_cfg(LR_ONLY), 3)
    _run_trial(loop, "t0")
    saved = load_sweep(out)
    assert saved.resume.trials == 3 and saved.resume.spent_seconds > 0
    assert saved.report.objective.metric == "loss" and saved.report.params == ["lr"]
    assert not saved.ended and saved.in_flight == []


def test_an_ended_sweep_says_so_with_its_exit_code(tmp_path, write_cfg, capsys):
    out = tmp_path / "out"
    out.mkdir()
    loop = _start(out, write_cfg(LR_ONLY), 2)
    while _run_trial(loop, f"t{len(loop.report.runs)}") is not None:
        pass
    report = loop.result()
    assert main(["resume", str(out)]) == report.exit_code == 0
    assert "the sweep already ended" in capsys.readouterr().out


# --- integration: a real sweep SIGKILLed mid-trial, then resumed -----------------------------

SLOW = """\
params: {lr: 0.01, steps: 1500, seed: 0, report_every: 20}
knobs:
  lr: {role: learning_rate, low: 1.0e-4, high: 1.0, log: true}
success:
  loss: {below: 0.05}
"""


@pytest.mark.integration
def test_a_killed_sweep_is_resumed_from_its_storage_and_folder(tmp_path):
    started = time.monotonic()
    cfg, out = tmp_path / "cfg.yaml", tmp_path / "out"
    cfg.write_text(SLOW)
    cli = [sys.executable, "-m", "rescue.cli.main"]
    env = {**os.environ, "RAY_CHDIR_TO_TRIAL_DIR": "0"}
    script = str(SCRIPTS / "sgd_regression.py")
    argv = ["sweep", script, "--config", str(cfg), "--out", str(out), "--trials", "4", "-q"]
    proc = subprocess.Popen([*cli, *argv], start_new_session=True, env=env)
    report = out / "report.json"

    def in_flight() -> list[dict]:
        try:
            runs = json.loads(report.read_text())["runs"]
        except (OSError, ValueError, KeyError):
            return []
        return [r for r in runs if r["outcome"] == "running"]

    try:  # kill it once a trial after the first is part way through
        while True:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() - started < 300, "no second trial started"
            running = [r for r in in_flight() if r["run"] >= 1]
            if running:
                metrics = out / "runs" / f"run-{running[0]['run']:03d}" / "metrics.jsonl"
                if metrics.is_file() and len(metrics.read_text().splitlines()) >= 5:
                    break
            time.sleep(0.1)
    finally:
        kill_all(proc)

    before = json.loads(report.read_text())
    ended = [r for r in before["runs"] if r["outcome"] != "running"]
    interrupted = [r["run"] for r in before["runs"] if r["outcome"] == "running"]
    assert ended and interrupted

    resumed = subprocess.run(
        [*cli, "resume", str(out)], env=env, capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(ended)} of 4 trials ended" in resumed.stdout
    after = json.loads(report.read_text())
    assert after["outcome"] == "healthy"
    assert [r["run"] for r in after["runs"]] == [0, 1, 2, 3]  # none lost, none repeated
    for record in ended:
        assert after["runs"][record["run"]] == record
    for run in interrupted:
        rerun = after["runs"][run]
        assert rerun["config"] == before["runs"][run]["config"]
        assert rerun["resumed"]["reports_before"] >= 5 and rerun["outcome"] != "running"
        assert (out / rerun["resumed"]["kept"] / "metrics.jsonl").is_file()
    study = optuna.load_study(study_name=after["study"], storage=after["storage"])
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == len(interrupted)
    assert len(states) == 4 + len(interrupted)
    assert (out / "ray" / "sweep-resume-1").is_dir()


@pytest.mark.integration
def test_two_real_sweeps_share_one_study_on_one_sqlite_file(tmp_path):
    """`rescue sweep --storage URL --study NAME` twice at once, each starting its own Ray."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(SLOW.replace("steps: 1500", "steps: 300"))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    script = str(SCRIPTS / "sgd_regression.py")
    env = {**os.environ, "RAY_CHDIR_TO_TRIAL_DIR": "0"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rescue.cli.main", "sweep", script, "--config", str(cfg)]
            + ["--out", str(tmp_path / name), "--trials", "3", "-q"]
            + ["--storage", storage, "--study", "shared"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        # Whether 3 trials find a healthy one depends on how the two sweeps' asks interleave
        # in the shared study; what is tested here is the sharing, so both verdicts are fine.
        assert proc.returncode in (0, 3), err
    reports = [json.loads((tmp_path / name / "report.json").read_text()) for name in ("a", "b")]
    assert {report["outcome"] for report in reports} <= {"healthy", "not_found"}
    numbers = sorted(r["trial"] for report in reports for r in report["runs"])
    assert numbers == list(range(6))  # one study, each trial in exactly one sweep
    assert all(report["study"] == "shared" for report in reports)
    study = optuna.load_study(study_name="shared", storage=storage)
    states = [(t.number, t.state.name, t.user_attrs.get("status")) for t in study.trials]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials), states
    assert {t.user_attrs["sweep"] for t in study.trials} == {
        report["resume"]["sweep_id"] for report in reports
    }
