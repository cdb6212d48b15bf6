"""report.json keeps the user-facing schema, and stays valid JSON whatever the metrics were."""

import json

from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord


def test_report_schema(tmp_path):
    report = RescueReport(script="t.py", config_file="c.yaml", out="o", storage="s", study="x")
    run = RunRecord(run=0, config={"lr": 0.01, "steps": 600}, status="stopped", reports=41)
    run.final_metrics = {"loss": float("nan"), "usage": [0.5, 0.5]}
    run.findings = [
        Finding("divergence", "loss", 37, "loss rose 62%", onset=33, evidence={"best": 0.28})
    ]
    run.remedy = {"name": "lr_cut", "changes": {"lr": [0.01, 0.0009]}}
    report.runs.append(run)
    report.runs.append(RunRecord(run=1, config={"lr": 0.0009, "steps": 600}, status="completed"))
    report.outcome, report.final_config = "rescued", {"lr": 0.0009, "steps": 600}
    path = tmp_path / "report.json"
    report.write(path)

    data = json.loads(path.read_text(), parse_constant=lambda c: 1 / 0)  # strict JSON
    assert data["outcome"] == "rescued"
    assert data["final_config"] == {"lr": 0.0009, "steps": 600}
    first = data["runs"][0]
    for key in ("run", "config", "status", "reports", "final_metrics", "findings", "remedy"):
        assert key in first
    assert first["final_metrics"]["loss"] == "nan"
    assert first["findings"][0] == {
        "signature": "divergence",
        "metric": "loss",
        "step": 37,
        "onset": 33,
        "reason": "loss rose 62%",
        "evidence": {"best": 0.28},
        "action": "restart",
    }
    assert first["remedy"] == {"name": "lr_cut", "changes": {"lr": [0.01, 0.0009]}}
    assert report.exit_code == 0
    report.outcome = "not_rescued"
    assert report.exit_code == 3
