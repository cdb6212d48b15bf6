"""Mirrors: a rescue's runs, metrics, findings and remedies copied to MLflow and TensorBoard as
they happen, read back with each tool's own reader; a mirror that fails never stops a rescue."""

from __future__ import annotations

import json

import pytest

from cli_runs import DIVERGING, run_rescue
from rescue.engine.record import RescueReport, RunRecord
from rescue.mirror.base import Displays


class _Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def run_started(self, record, changes) -> None:
        self.events.append("run_started")

    def reported(self, step, metrics, findings) -> None:
        self.events.append("reported")

    def run_ended(self, record) -> None:
        self.events.append("run_ended")

    def finished(self, report) -> None:
        self.events.append("finished")


class _Broken(_Recorder):
    def reported(self, step, metrics, findings) -> None:
        raise ConnectionError("tracking server unreachable")


def test_a_mirror_that_fails_is_switched_off_with_one_warning_and_the_rest_goes_on(capsys):
    terminal, broken, other = _Recorder(), _Broken(), _Recorder()
    displays = Displays(terminal, [broken, other])
    displays.run_started(RunRecord(run=0, config={}), {})
    for step in range(3):
        displays.reported(step, {"loss": 1.0}, [])
    displays.run_ended(RunRecord(run=0, config={}))
    displays.finished(RescueReport(script="s", config_file="c", out="o", storage="", study=""))
    assert (
        terminal.events
        == other.events
        == ["run_started", *["reported"] * 3, "run_ended", "finished"]
    )
    assert broken.events == ["run_started"]
    warning = capsys.readouterr().err
    assert warning.count("switched off") == 1 and "tracking server unreachable" in warning


@pytest.mark.integration
def test_a_rescue_shows_up_in_mlflow_and_tensorboard_as_it_went(local_ray, tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = DIVERGING + (
        f"mirror:\n  mlflow: {{tracking_uri: '{uri}', experiment: mirrored}}\n"
        f"  tensorboard: {{logdir: '{tmp_path}/tb'}}\n"
    )
    code, report, out = run_rescue(tmp_path, cfg)
    assert code == 0 and report["outcome"] == "rescued", report["summary"]
    runs = report["runs"]

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mirrored")
    found = client.search_runs([experiment.experiment_id])
    parent = next(r for r in found if "mlflow.parentRunId" not in r.data.tags)
    children = {
        int(r.data.tags["rescue.run"]): r for r in found if "mlflow.parentRunId" in r.data.tags
    }
    assert parent.data.tags["rescue.outcome"] == "rescued"
    assert json.loads(parent.data.tags["rescue.final_config"])["lr"] == report["final_config"]["lr"]
    assert sorted(children) == [r["run"] for r in runs]
    first, last = children[0], children[len(runs) - 1]
    assert first.data.params["lr"] == "0.9"
    assert first.data.tags["rescue.verdict"].startswith(runs[0]["findings"][0]["signature"])
    assert first.data.tags["rescue.remedy"].startswith(runs[0]["remedy"]["name"])
    assert last.data.tags["rescue.status"] == "completed" and "rescue.remedy" not in last.data.tags
    # Every report the supervisor judged, at its index as the step: a stopped run's up to its
    # verdict (metrics.jsonl also keeps any that came after it in the same batch).
    judged = {
        r["run"]: r["findings"][0]["step"] + 1 if r["findings"] else r["reports"] for r in runs
    }
    assert judged[0] <= runs[0]["reports"] and judged[len(runs) - 1] == 300 // 5
    for run, count in judged.items():
        history = client.get_metric_history(children[run].info.run_id, "loss")
        assert [m.step for m in history] == list(range(count))
        board = EventAccumulator(str(tmp_path / "tb" / f"run-{run:03d}"))
        board.Reload()
        assert [s.step for s in board.Scalars("loss")] == list(range(count))
    board = EventAccumulator(str(tmp_path / "tb" / "run-001"))
    board.Reload()
    assert "rescue/remedy/text_summary" in board.Tags()["tensors"]  # what led to run 1


def _dashboard_get(app, path: str) -> dict:
    from wsgiref.util import setup_testing_defaults

    environ: dict = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    status: list[str] = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status == ["200 OK"], (path, status, body[:300])
    return json.loads(body)


@pytest.mark.integration
def test_optuna_dashboard_reads_a_rescue_study_with_each_run_as_a_trial(local_ray, tmp_path):
    from optuna_dashboard import wsgi

    code, report, out = run_rescue(tmp_path, DIVERGING)
    assert code == 0
    app = wsgi(report["storage"])  # the dashboard's own app, without a server
    studies = _dashboard_get(app, "/api/studies")["study_summaries"]
    [study] = [s for s in studies if s["study_name"] == report["study"]]
    trials = _dashboard_get(app, f"/api/studies/{study['study_id']}")["trials"]
    assert [t["state"] for t in trials] == ["Pruned"] * (len(report["runs"]) - 1) + ["Complete"]
    assert [t["params"][0]["param_external_value"] for t in trials] == [
        str(r["config"]["lr"]) for r in report["runs"]
    ]
    keys = {a["key"] for a in trials[0]["user_attrs"]}
    assert {"run", "status", "findings", "remedy"} <= keys


def test_a_sweep_refuses_mirror_rather_than_ignore_it(tmp_path, capsys):
    from cli_runs import SCRIPTS
    from rescue.cli.main import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(DIVERGING + f"mirror:\n  tensorboard: {{logdir: '{tmp_path}/tb'}}\n")
    code = main(["sweep", str(SCRIPTS / "sgd_regression.py"), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2 and "mirror:" in err and str(cfg) in err
    assert not (tmp_path / "tb").exists()
