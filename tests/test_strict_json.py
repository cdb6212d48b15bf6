"""Everything rescue writes is strict JSON (no NaN or Infinity literals), and non-finite
metrics come back as floats where they are read."""

import json
import math
from pathlib import Path

import pytest

from rescue import strict_json
from rescue.detectors.run_monitor import RunMonitor
from rescue.detectors.stream import MetricStream
from rescue.engine.record import RescueReport, RunRecord
from rescue.engine.resume import _history
from rescue.page.data import load_report
from rescue.policy import load_policy


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_metrics_jsonl_and_report_json_are_strict_and_read_back(tmp_path: Path):
    folder = tmp_path / "runs" / "run-000"
    folder.mkdir(parents=True)
    watch = RunMonitor(load_policy("default"), MetricStream(), folder / "metrics.jsonl")
    for value in (1.0, math.inf, math.nan):
        watch.on_report({"loss": value, "usage": [0.5, -math.inf]})
    watch.close()
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    rows = [_strict(line) for line in lines]
    assert rows[2] == {"step": 2, "metrics": {"loss": "nan", "usage": [0.5, "-inf"]}}
    history = _history(folder / "metrics.jsonl")
    assert history[1]["loss"] == math.inf and math.isnan(history[2]["loss"])
    assert history[2]["usage"][1] == -math.inf

    report = RescueReport(script="s", config_file="", out=str(tmp_path), storage="x", study="s")
    run = RunRecord(run=0, config={"lr": 0.1}, status="stopped", reports=3)
    run.final_metrics = {"loss": math.nan}
    report.runs.append(run)
    report.write(tmp_path / "report.json")
    assert _strict((tmp_path / "report.json").read_text())["runs"][0]["final_metrics"] == {
        "loss": "nan"
    }
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []  # none left
    data = load_report(tmp_path)
    assert math.isnan(data.runs[0].history[2].metrics["loss"])


def test_a_metric_named_step_is_kept_beside_the_report_index(tmp_path: Path):
    folder = tmp_path / "runs" / "run-000"
    folder.mkdir(parents=True)
    watch = RunMonitor(load_policy("default"), MetricStream(), folder / "metrics.jsonl")
    for i in range(3):
        watch.on_report({"loss": 1.0 / (i + 1), "step": 100.0 * (i + 1)})
    watch.close()
    rows = [_strict(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert [r["metrics"]["step"] for r in rows] == [100.0, 200.0, 300.0]
    assert [r["step"] for r in _history(folder / "metrics.jsonl")] == [100.0, 200.0, 300.0]
    assert load_report(tmp_path).runs[0].series("step") == ([0, 1, 2], [100.0, 200.0, 300.0])


def test_flat_rows_of_earlier_versions_are_still_read(tmp_path: Path):
    folder = tmp_path / "runs" / "run-000"
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n{"step": 1, "loss": NaN}\n')
    assert [r["loss"] for r in _history(folder / "metrics.jsonl")][0] == 1.0
    run = load_report(tmp_path).runs[0]
    assert run.series("loss")[0] == [0, 1] and math.isnan(run.series("loss")[1][1])


def test_a_write_that_fails_at_the_rename_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "report.json"
    (path / "in-the-way").mkdir(parents=True)  # a folder where the file should go
    with pytest.raises(OSError):
        strict_json.write_file(path, {"outcome": "running"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
