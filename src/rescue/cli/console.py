"""The terminal views. A rescue's: a compact live line while a run trains, findings as they
fire, and a summary table at the end. A sweep's: one line per trial start, finding and end
(trials run side by side, so no live line), then the leaderboard and the count of trials per
signature. Quiet mode prints nothing (the report is in report.json)."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rescue import layout
from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord
from rescue.engine.sweep import TOP, SweepReport, SweepTrial, signature_counts
from rescue.worker.reporting import Metrics

SPARKS = "▁▂▃▄▅▆▇█"
SHOWN_METRICS = 4


def sparkline(values: list[float]) -> str:
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    if len(finite) < 2:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(SPARKS[int((v - low) / span * (len(SPARKS) - 1))] for v in finite)


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``███████░░░░░░░░░░░░░`` for ``done`` of ``total``.

    >>> progress_bar(15, 30, width=10)
    '█████░░░░░'
    """
    filled = round(width * min(max(done, 0), total) / total)
    return "█" * filled + "░" * (width - filled)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + " ".join(f"{v:.2f}" for v in value) + "]"
    return str(value)


class RescueConsole:
    def __init__(
        self,
        quiet: bool = False,
        console: Console | None = None,
        run_length: int | None = None,
        page: bool = False,
    ) -> None:
        """``run_length``: a run's length in reports, when known: a progress bar toward it;
        ``page``: report.html is drawn once this view has finished (while Ray stops)."""
        self.quiet = quiet
        self.run_length = run_length
        self.page = page
        self.console = console or Console(stderr=False, highlight=False)
        self._live: Live | None = None
        self._run = 0
        self._step = -1
        self._latest: Metrics = {}
        self._trends: dict[str, deque[float]] = {}
        self._finding: Finding | None = None
        self._last_refresh = 0.0

    # --- the supervisor's events -------------------------------------------------------
    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None:
        if self.quiet:
            return
        self._run, self._step, self._latest, self._finding = record.run, -1, {}, None
        self._trends = {}
        if changes:
            what = ", ".join(f"{k} {_fmt(a)} -> {_fmt(b)}" for k, (a, b) in changes.items())
            self.console.print(f"[bold]run {record.run}[/] restarts with {escape(what)}")
        else:
            self.console.print(f"[bold]run {record.run}[/] starts with the config as given")
        if self.console.is_terminal:
            self._live = Live(self._line(), console=self.console, refresh_per_second=4)
            self._live.start()

    def reported(self, step: int, metrics: Metrics, findings: list[Finding]) -> None:
        if self.quiet:
            return
        self._step, self._latest = step, metrics
        for name, value in metrics.items():
            if not isinstance(value, list):
                self._trends.setdefault(name, deque(maxlen=24)).append(value)
        for finding in findings:
            self._finding = finding if finding.action == "restart" else self._finding
            style = "red" if finding.action == "restart" else "yellow"
            label = "finding" if finding.action == "restart" else "warning"
            self.console.print(
                f"  [{style}]{label}[/] {escape(finding.signature)} at report {finding.step}: "
                f"{escape(finding.reason)}"
            )
        now = time.monotonic()
        if self._live is not None and now - self._last_refresh > 0.2:
            self._last_refresh = now
            self._live.update(self._line())

    def run_ended(self, record: RunRecord) -> None:
        if self.quiet:
            return
        if self._live is not None:
            self._live.update(self._line())
            self._live.stop()
            self._live = None
        verdict = record.verdict
        what = f"{record.status} after {record.reports} reports ({record.seconds:.1f} s)"
        if verdict is not None:
            self.console.print(f"  run {record.run} {what}: [red]{escape(verdict.signature)}[/]")
        else:
            self.console.print(f"  run {record.run} {what}: [green]healthy[/]")
        if record.error:
            tail = "\n".join(record.error.strip().splitlines()[-6:])
            self.console.print(Text(tail, style="dim"))

    def finished(self, report: RescueReport) -> None:
        if self.quiet:
            return
        table = Table(title="rescue summary", show_lines=False)
        for column in ("run", "config", "reports", "status", "finding", "remedy"):
            table.add_column(column)
        for run in report.runs:
            verdict = run.verdict
            remedy = run.remedy or {}
            changes = remedy.get("changes") or {}
            cells = (
                str(run.run),
                ", ".join(f"{k}={_fmt(run.config[k])}" for k in _knobs_of(report, run)),
                str(run.reports),
                run.status,
                f"{verdict.signature}: {verdict.reason}" if verdict else "healthy",
                (
                    f"{remedy['name']}: "
                    + ", ".join(f"{k} {_fmt(a)} -> {_fmt(b)}" for k, (a, b) in changes.items())
                )
                if remedy
                else "",
            )
            table.add_row(*(Text(cell) for cell in cells))  # user strings, printed as they are
        self.console.print(table)
        _verdict(self.console, report, "final config")
        if self.page and report.outcome != "interrupted":
            page = Path(report.out) / layout.PAGE
            self.console.print(Text(f"page: {page} (plots in {layout.PLOTS}/)"))

    # --- rendering ---------------------------------------------------------------------
    def _line(self) -> Text:
        text = Text(f"run {self._run} · report {max(self._step, 0)}", style="bold")
        if self.run_length:
            text.append(f"/{self.run_length} ", style="bold")
            text.append(progress_bar(self._step + 1, self.run_length), style="green")
        for name, value in list(self._latest.items())[:SHOWN_METRICS]:
            text.append(f" · {name} {_fmt(value)} ")
            text.append(sparkline(list(self._trends.get(name, ()))), style="cyan")
        if self._finding is not None:
            text.append(f" · {self._finding.signature}", style="red")
        return text


def _knobs_of(report: RescueReport, run: RunRecord) -> list[str]:
    first = report.runs[0].config
    changed = [k for k in run.config if run.config[k] != first.get(k)]
    knob_names = report.knobs or changed
    return [k for k in knob_names if k in run.config]


# ---------------------------------------------------------------- sweeps


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
        _verdict(self.console, report, "best config")


def _verdict(console: Console, report: RescueReport, config_label: str) -> None:
    """The closing lines of both views: the outcome, the config it ended with, report.json."""
    colour = "green" if report.exit_code == 0 else "red"
    console.print(f"[bold {colour}]outcome: {report.outcome}[/] - {escape(report.summary)}")
    if report.final_config is not None:
        console.print(Text(f"{config_label}: {report.final_config}"))
    console.print(Text(f"report: {Path(report.out) / layout.REPORT_JSON}"))
