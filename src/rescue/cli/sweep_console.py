"""The terminal view of a sweep: one line per trial start, finding and end (trials run side by
side, so no live line), then the leaderboard and the count of trials per signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rescue import layout
from rescue.detectors.findings import Finding
from rescue.engine.sweep import TOP, SweepReport, SweepTrial, signature_counts


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _params(trial: SweepTrial, names: list[str]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params(names).items())


class SweepConsole:
    def __init__(self, params: list[str], quiet: bool = False, console: Console | None = None):
        self.params, self.quiet = params, quiet
        self.console = console or Console(highlight=False)

    def trial_started(self, trial: SweepTrial, changes: dict[str, list[Any]]) -> None:
        if self.quiet:
            return
        if trial.rescue_of is not None:
            what = ", ".join(f"{k} {_fmt(a)} -> {_fmt(b)}" for k, (a, b) in changes.items())
            what = what or "a retry"
            self.console.print(
                f"[bold]trial {trial.run}[/] rescues trial {trial.rescue_of}: {escape(what)}"
            )
        elif trial.resumed is not None:
            self.console.print(
                f"[bold]trial {trial.run}[/] starts again (the supervisor stopped after "
                f"{trial.resumed['reports_before']} of its reports): "
                f"{escape(_params(trial, self.params))}"
            )
        else:
            params = escape(_params(trial, self.params))
            self.console.print(f"[bold]trial {trial.run}[/] starts: {params}")

    def finding(self, trial: SweepTrial, finding: Finding) -> None:
        if self.quiet:
            return
        style, label = ("red", "finding") if finding.action == "restart" else ("yellow", "warning")
        self.console.print(
            f"  trial {trial.run} [{style}]{label}[/] {escape(finding.signature)} at report "
            f"{finding.step}: {escape(finding.reason)}"
        )

    def trial_ended(self, trial: SweepTrial) -> None:
        if self.quiet:
            return
        what = f"{trial.status} after {trial.reports} reports ({trial.seconds:.1f} s)"
        diagnosis = trial.diagnosis
        if diagnosis is not None:
            self.console.print(f"  trial {trial.run} {what}: [red]{escape(diagnosis.signature)}[/]")
        else:
            objective = "" if trial.objective is None else f", objective {_fmt(trial.objective)}"
            status = "[green]healthy[/]" if trial.met_success else "[yellow]missed target[/]"
            self.console.print(f"  trial {trial.run} {what}: {status}{objective}")

    def finished(self, report: SweepReport) -> None:
        if self.quiet:
            return
        objective = report.objective
        title = f"sweep leaderboard: {objective.describe()}" if objective else "sweep leaderboard"
        table = Table(title=title)
        for column in ("rank", "trial", "params", "objective", "reports", "status"):
            table.add_column(column)
        ranked = report.ranked()
        for place, trial in enumerate(ranked[:TOP], start=1):
            diagnosis = trial.diagnosis
            status = "[green]healthy[/]"
            if diagnosis is not None:
                status = f"[red]{escape(diagnosis.signature)}[/]"
            elif not trial.met_success:
                status = "[yellow]missed target[/]"  # no finding, but not there either
            if trial.rescue_of is not None:
                status += f" (rescue of {trial.rescue_of})"
            table.add_row(
                str(place),
                str(trial.run),
                Text(_params(trial, report.params)),
                "" if trial.objective is None else _fmt(trial.objective),
                str(trial.reports),
                status,
            )
        self.console.print(table)
        if len(ranked) > TOP:
            self.console.print(f"({len(ranked) - TOP} more trials in report.json)")
        counts = signature_counts(ranked)
        self.console.print(
            Text("trials per signature: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        )
        colour = "green" if report.exit_code == 0 else "red"
        self.console.print(
            f"[bold {colour}]outcome: {report.outcome}[/] - {escape(report.summary)}"
        )
        if report.final_config is not None:
            self.console.print(Text(f"best config: {report.final_config}"))
        self.console.print(Text(f"report: {Path(report.out) / layout.REPORT_JSON}"))
