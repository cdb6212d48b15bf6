"""User strings (metric and knob names, values, reasons, paths) reach the terminal as they
are: rich markup in them is neither interpreted nor an error."""

import io

from rich.console import Console

from rescue.cli.console import RescueConsole, SweepConsole
from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord
from rescue.engine.sweep import SweepReport

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


def test_rescue_signatures_piped_is_one_block_per_signature_in_plain_words(capsys):
    from rescue.cli.main import main
    from rescue.policy import load_policy

    assert main(["signatures"]) == 0  # captured: not a terminal
    out = capsys.readouterr().out
    for signature in load_policy("default").rules:
        assert any(line.startswith(f"{signature} (") for line in out.splitlines()), signature
    looks = [line for line in out.splitlines() if line.startswith("  looks at: ")]
    assert looks and not any("``" in line or "  " in line[12:] for line in looks)
    assert "│" not in out


def test_the_sweep_leaderboard_says_which_trials_missed_the_target():
    from rescue.engine.sweep import SweepTrial

    buffer = io.StringIO()
    display = SweepConsole(["lr"], console=Console(file=buffer, width=200))
    report = SweepReport(script="s", config_file="c", out="/o", storage="x", study="s")
    report.outcome, report.summary = "healthy", "done"
    for run, met in enumerate([True, False]):
        trial = SweepTrial(run=run, config={"lr": 0.1 * (run + 1)}, status="completed")
        trial.outcome, trial.met_success, trial.reports = "healthy", met, 10
        report.runs.append(trial)
    display.finished(report)
    rows = [line.split("│") for line in buffer.getvalue().splitlines() if "│" in line]
    assert [(row[2].strip(), row[-2].strip()) for row in rows] == [
        ("0", "healthy"),
        ("1", "missed target"),
    ]


def test_the_summary_names_the_page_only_when_one_is_drawn():
    # The page is drawn after the summary (while Ray stops): the summary says where it will be.
    report = RescueReport(script="s", config_file="c", out="/o", storage="x", study="s")
    report.outcome, report.summary = "healthy", "done"
    for page, interrupted, named in (
        (True, False, True),
        (False, False, False),
        (True, True, False),
    ):
        buffer = io.StringIO()
        report.outcome = "interrupted" if interrupted else "healthy"
        RescueConsole(console=Console(file=buffer, width=200), page=page).finished(report)
        assert ("page: /o/report.html" in buffer.getvalue()) is named
