"""What a rescue saved, loaded back for the report: ``report.json`` and every run's
``runs/run-NNN/metrics.jsonl``, as plain dataclasses. No Ray, no Optuna: the report can be
re-rendered anywhere the output folder is copied to.

An interrupted rescue leaves ``report.json`` missing, partial or still ``running``; whatever
it lacks is rebuilt from the metric histories (and each run's config from Ray Tune's
``params.json``, when it is there), and the report says the rescue was interrupted.

>>> outcome_label("not_rescued"), outcome_label("running")
('not rescued', 'interrupted')
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rescue import layout, strict_json
from rescue.detectors.findings import Finding
from rescue.errors import RescueError
from rescue.kinds import Kind, MetricKinds
from rescue.worker.run_settings import split_settings
from rescue.yaml_loader import load_yaml

Value = float | list[float]

# Metrics rescue.watch adds to every report; the report shows them as their own group.
WATCH_METRICS = (
    "grad_norm_total",
    "grad_norm_max_layer",
    "grad_norm_min_layer",
    "update_ratio",
    "weight_norm",
    "dead_fraction",
    "saturated_fraction",
    "input_absmax",
    "input_std",
    "input_mean",
    "output_std",
)


class ReportDataError(RescueError):
    """The output folder holds nothing to report on."""


@dataclass(frozen=True)
class Threshold:
    """A ``success`` target: the metric must end ``below`` or ``above`` ``value``."""

    metric: str
    op: str  # "below" | "above"
    value: float

    def describe(self) -> str:
        return f"{'<' if self.op == 'below' else '>'} {self.value:g}"

    def met_by(self, value: Any) -> bool | None:
        if not isinstance(value, (int, float)):
            return None  # not reported, or a vector
        if not math.isfinite(value):
            return False
        return value < self.value if self.op == "below" else value > self.value


@dataclass(frozen=True)
class Row:
    """One report of a run's metrics.jsonl."""

    step: int
    metrics: dict[str, Any]


@dataclass
class RunData:
    """One run: what report.json says about it (if anything) and its full metric history."""

    run: int
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "interrupted"  # stopped | completed | crashed | interrupted | ended
    reports: int = 0
    findings: list[Finding] = field(default_factory=list)
    remedy: dict[str, Any] | None = None
    met_success: bool = False
    seconds: float | None = None
    error: str | None = None
    final_metrics: dict[str, Any] = field(default_factory=dict)
    rescue_of: int | None = None  # in a sweep: the trial this one rescues
    history: list[Row] = field(default_factory=list)  # one per report
    recorded: bool = False  # listed in report.json (else rebuilt from its metrics.jsonl)

    @property
    def verdict(self) -> Finding | None:
        """The finding the run was stopped (or judged) for."""
        return next((f for f in self.findings if f.action == "restart"), None)

    @property
    def outcome(self) -> str:
        """How the run ended, in a word or two: its verdict, healthy or missed target."""
        if self.verdict is not None:
            return self.verdict.signature
        if self.status == "completed":
            return "healthy" if self.met_success or not self.recorded else "missed target"
        return {"ended": "not recorded"}.get(self.status, self.status)

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.action != "restart"]

    @property
    def changes(self) -> dict[str, list[Any]]:
        return dict((self.remedy or {}).get("changes") or {})

    def metric_names(self) -> list[str]:
        """Every metric the run reported, in the order it first appeared."""
        names: dict[str, None] = {}
        for row in self.history:
            names.update((k, None) for k in row.metrics)
        return list(names)

    def is_vector(self, name: str) -> bool:
        return any(isinstance(row.metrics.get(name), list) for row in self.history)

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """A scalar metric's steps and values; reports without it are skipped (``rescue.watch``
        measures one step in N, so its metrics come with gaps)."""
        steps, values = [], []
        for row in self.history:
            value = row.metrics.get(name)
            if isinstance(value, (int, float)):
                steps.append(row.step)
                values.append(float(value))
        return steps, values

    def vectors(self, name: str) -> tuple[list[int], list[list[float]]]:
        steps, values = [], []
        for row in self.history:
            value = row.metrics.get(name)
            if isinstance(value, list):
                steps.append(row.step)
                values.append([float(v) for v in value])
        return steps, values


@dataclass
class SweepData:
    """What a sweep's report.json adds: its objective and its trials, ranked as recorded."""

    objective: str | None = None
    mode: str | None = None
    best_trial: int | None = None
    requested: int = 0
    signatures: dict[str, int] = field(default_factory=dict)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)  # best first

    def describe(self) -> str:
        if not self.objective:
            return "no objective"
        return f"{'minimise' if self.mode != 'max' else 'maximise'} {self.objective}"


@dataclass
class ReportData:
    """Everything the report shows, for one output folder."""

    out: Path
    outcome: str  # healthy | rescued | not_rescued | interrupted
    summary: str
    runs: list[RunData]
    final_config: dict[str, Any] | None = None
    knobs: list[str] = field(default_factory=list)
    success: list[Threshold] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    script: str = ""
    config_file: str = ""
    notes: list[str] = field(default_factory=list)  # problems met while loading
    sweep: SweepData | None = None  # set for a sweep's folder

    @property
    def interrupted(self) -> bool:
        return self.outcome == "interrupted"

    @property
    def unit(self) -> str:
        """What one run is called: a sweep's runs are its trials."""
        return "trial" if self.sweep is not None else "run"

    @property
    def total_reports(self) -> int:
        return sum(r.reports for r in self.runs)

    def threshold(self, metric: str) -> Threshold | None:
        return next((t for t in self.success if t.metric == metric), None)

    def kind(self, metric: str) -> Kind:
        return MetricKinds(self.kinds)(metric)

    def key_metric(self) -> str | None:
        """The metric that tells the story across runs: a sweep's objective, else the first
        success metric reported, else the first loss, else the first scalar metric."""
        scalars = [n for r in self.runs for n in r.metric_names() if not r.is_vector(n)]
        user = [n for n in dict.fromkeys(scalars) if n not in WATCH_METRICS]
        if self.sweep is not None and self.sweep.objective in user:
            return self.sweep.objective
        for target in self.success:
            if target.metric in user:
                return target.metric
        losses = [n for n in user if self.kind(n) is Kind.LOSS]
        return (losses or user or list(dict.fromkeys(scalars)) or [None])[0]

    def knob_values(self, run: RunData) -> dict[str, Any]:
        return {k: run.config[k] for k in self.knobs if k in run.config}


def outcome_label(outcome: str) -> str:
    """How an outcome reads in the report."""
    return {"not_rescued": "not rescued", "running": "interrupted"}.get(outcome, outcome)


def load_report(out: str | Path) -> ReportData:
    """Read ``out``'s report.json and metric histories; raises :class:`ReportDataError` when
    there is no run to report on."""
    out = Path(out)
    if not out.is_dir():
        raise ReportDataError(f"{out}: no such folder")
    notes: list[str] = []
    saved = _read_report_json(out / layout.REPORT_JSON, notes)
    histories = _read_histories(out / layout.RUNS, notes)
    runs = {r.run: r for r in _runs_from_json(saved.get("runs"), notes)}
    for number, history in histories.items():
        run = runs.setdefault(number, RunData(run=number))
        run.history = history
        if not run.recorded:
            _rebuild(run, out, history)
    if not runs:
        why = "; ".join(notes) or "no report.json, no runs/*/metrics.jsonl"
        raise ReportDataError(f"{out}: no runs to report on ({why})")
    ordered = [runs[k] for k in sorted(runs)]
    for run in ordered[:-1]:
        if not run.recorded:
            run.status = "ended"  # a later run started, but its end was never recorded

    outcome = str(saved.get("outcome") or "running")
    unrecorded = [r.run for r in ordered if not r.recorded]
    interrupted = outcome == "running" or bool(unrecorded)
    summary = str(saved.get("summary") or "")
    if interrupted:
        outcome = "interrupted"
        last = ordered[-1]
        summary = (
            f"the rescue was interrupted during run {last.run} after {last.reports} reports"
            if last.status == "interrupted"
            else f"the rescue was interrupted after run {last.run}"
        ) + (f"; {summary}" if summary else "")

    config_file = str(saved.get("config_file") or "")
    success, kinds, knobs = _read_cfg(config_file, notes)
    data = ReportData(
        out=out,
        outcome=outcome,
        summary=summary,
        runs=ordered,
        final_config=saved.get("final_config"),
        knobs=knobs or _knobs_from_runs(ordered),
        success=success,
        kinds=kinds,
        script=str(saved.get("script") or ""),
        config_file=config_file,
        notes=notes,
        sweep=_sweep_from_json(saved, notes),
    )
    _fill_changes(data)
    return data


# --- reading ---------------------------------------------------------------------------------


def _read_report_json(path: Path, notes: list[str]) -> dict[str, Any]:
    if not path.is_file():
        notes.append("report.json is missing: runs were rebuilt from their metric histories")
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"report.json could not be read ({exc}): runs were rebuilt from metrics")
        return {}
    return data if isinstance(data, dict) else {}


def _sweep_from_json(saved: dict[str, Any], notes: list[str]) -> SweepData | None:
    sweep = saved.get("sweep")
    if sweep is None:
        return None
    if not isinstance(sweep, dict):
        notes.append(f"report.json's sweep is a {type(sweep).__name__}, not an object: ignored")
        return SweepData()
    trials = saved.get("trials")
    rows = [t for t in trials if isinstance(t, dict)] if isinstance(trials, list) else []
    signatures = sweep.get("signatures")
    best = sweep.get("best_trial")
    requested = sweep.get("requested_trials")
    return SweepData(
        objective=str(sweep["objective"]) if sweep.get("objective") else None,
        mode=str(sweep["mode"]) if sweep.get("mode") else None,
        best_trial=best if isinstance(best, int) else None,
        requested=requested if isinstance(requested, int) else 0,
        signatures=dict(signatures) if isinstance(signatures, dict) else {},
        leaderboard=rows,
    )


def _runs_from_json(runs: Any, notes: list[str]) -> list[RunData]:
    """The runs report.json records; one it cannot read is named in the notes and left out
    (the page rebuilds it from its metrics.jsonl if there is one)."""
    if runs is None:
        return []
    if not isinstance(runs, list):
        notes.append(f"report.json's runs is a {type(runs).__name__}, not a list: ignored")
        return []
    read = []
    for number, entry in enumerate(runs):
        try:
            if not isinstance(entry, dict):
                raise TypeError(f"a {type(entry).__name__}, not an object")
            read.append(_run_from_json(entry))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            notes.append(f"report.json's run entry {number} could not be read ({exc}): ignored")
    return read


def _read_histories(runs_dir: Path, notes: list[str]) -> dict[int, list[Row]]:
    histories: dict[int, list[Row]] = {}
    if not runs_dir.is_dir():
        return histories
    for folder in sorted(runs_dir.iterdir()):
        run = layout.run_number(folder.name)
        if run is None or not folder.is_dir():
            continue
        rows: list[Row] = []
        path = folder / layout.METRICS
        lines = path.read_text().splitlines() if path.is_file() else []
        for number, line in enumerate(lines):
            try:
                row = json.loads(line)
            except ValueError:
                # The last line of a killed run may be cut short; anything else is news.
                if number != len(lines) - 1:
                    notes.append(f"{path}: line {number + 1} is not JSON; skipped")
                continue
            read = strict_json.metrics_row(row)
            if read is not None:
                step, metrics = read
                rows.append(Row(len(rows) if step is None else step, metrics))
        histories[run] = rows
    return histories


def _run_from_json(data: dict[str, Any]) -> RunData:
    findings = [_finding(f) for f in data.get("findings") or [] if isinstance(f, dict)]
    return RunData(
        run=int(data.get("run", 0)),
        config=dict(data.get("config") or {}),
        status=str(data.get("status") or "interrupted"),
        reports=int(data.get("reports") or 0),
        findings=findings,
        remedy=data.get("remedy"),
        met_success=bool(data.get("met_success")),
        seconds=data.get("seconds"),
        error=data.get("error"),
        final_metrics=dict(data.get("final_metrics") or {}),
        rescue_of=data.get("rescue_of") if isinstance(data.get("rescue_of"), int) else None,
        recorded=True,
    )


def _finding(data: dict[str, Any]) -> Finding:
    known = {k: data[k] for k in ("signature", "metric", "step", "reason", "onset") if k in data}
    return Finding(
        signature=str(known.get("signature", "?")),
        metric=known.get("metric"),
        step=int(known.get("step") or 0),
        reason=str(known.get("reason", "")),
        onset=known.get("onset"),
        evidence=dict(data.get("evidence") or {}),
        action="warn" if data.get("action") == "warn" else "restart",
    )


def _rebuild(run: RunData, out: Path, history: list[Row]) -> None:
    """A run report.json does not list: its reports, last metrics and (from Ray Tune's trial
    folder) its config."""
    run.reports = len(history)
    run.final_metrics = dict(history[-1].metrics) if history else {}
    for folder in layout.trial_folders(out, run.run):
        try:
            run.config, _ = split_settings(json.loads((folder / "params.json").read_text()))
        except (OSError, ValueError, TypeError):
            continue


def _read_cfg(
    config_file: str, notes: list[str]
) -> tuple[list[Threshold], dict[str, str], list[str]]:
    """Success targets, declared metric kinds and knob names from the rescue's cfg.yaml."""
    if not config_file:
        return [], {}, []
    try:
        raw = load_yaml(config_file)
    except Exception as exc:  # a moved or edited cfg.yaml costs the target lines, not the page
        notes.append(f"{config_file} could not be read ({type(exc).__name__}): no targets drawn")
        return [], {}, []
    raw = raw if isinstance(raw, dict) else {}
    success = []
    for metric, target in (raw.get("success") or {}).items():
        for op in ("below", "above"):
            if isinstance(target, dict) and isinstance(target.get(op), (int, float)):
                success.append(Threshold(str(metric), op, float(target[op])))
    kinds = {
        str(name): str(spec["kind"])
        for name, spec in (raw.get("metrics") or {}).items()
        if isinstance(spec, dict) and spec.get("kind") in {k.value for k in Kind}
    }
    return success, kinds, [str(k) for k in raw.get("knobs") or {}]


def _knobs_from_runs(runs: list[RunData]) -> list[str]:
    """Without cfg.yaml: the params a remedy touched or that differ between runs."""
    names: dict[str, None] = {}
    for run in runs:
        names.update((k, None) for k in run.changes)
        names.update((k, None) for k in (run.remedy or {}).get("search_space") or {})
    first = runs[0].config
    for run in runs[1:]:
        names.update((k, None) for k, v in run.config.items() if first.get(k) != v)
    return list(names)


def _fill_changes(data: ReportData) -> None:
    """report.json fills a remedy's changes when the next run starts; an interrupted rescue
    may have saved it empty (or not at all), so the changes come from the two runs' configs."""
    for run, after in zip(data.runs, data.runs[1:]):
        if run.changes or not after.config:
            continue
        if run.remedy is None:
            run.remedy = {"name": "restart", "changes": {}}  # which remedy was not recorded
        run.remedy["changes"] = {
            k: [run.config.get(k), after.config[k]]
            for k in data.knobs
            if k in after.config and run.config.get(k) != after.config[k]
        }
