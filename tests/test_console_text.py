"""User strings (metric and knob names, values, reasons, paths) reach the terminal as they
are: rich markup in them is neither interpreted nor an error."""

import io

from rich.console import Console

from rescue.console import RescueConsole
from rescue.findings import Finding
from rescue.record import RescueReport, RunRecord
from rescue.sweep import SweepReport
from rescue.sweep_console import SweepConsole

ODD = "loss[/x]"


def test_markup_in_a_rescue_s_strings_prints_literally():
    buffer = io.StringIO()
    display = RescueConsole(console=Console(file=buffer, width=200))
    run = RunRecord(run=0, config={"x[/]y": "a[/]b"}, status="stopped", reports=3)
    finding = Finding("divergence", ODD, 0, f"{ODD} rose [bold]")
    display.run_started(run, {"lr[/]": [1, 2]})
    display.reported(0, {ODD: 1.0}, [finding])
    run.findings = [finding]
    display.run_ended(run)
    report = RescueReport(script="s", config_file="c", out="/o[/]", storage="x", study="s")
    report.outcome, report.summary, report.final_config = "rescued", "[/] done", {"a[/]": 1}
    report.runs.append(run)
    display.finished(report)
    text = buffer.getvalue()
    assert f"{ODD} rose [bold]" in text and "[/] done" in text and "/o[/]/report.json" in text


def test_markup_in_a_sweep_s_strings_prints_literally():
    buffer = io.StringIO()
    display = SweepConsole(["w[/]"], console=Console(file=buffer, width=200))
    report = SweepReport(script="s", config_file="c", out="/o[/]", storage="x", study="s")
    report.outcome, report.summary = "done", "[/] best"
    display.finished(report)
    assert "[/] best" in buffer.getvalue()
