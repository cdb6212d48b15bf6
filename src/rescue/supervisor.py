"""The supervisor: run the job, watch its metrics, and when a failure signature shows, stop the
run and restart it with the remedy the policy prescribes, its new values chosen by Optuna,
until a run finishes healthy or the budget is spent."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from optuna.trial import TrialState

from rescue.command_line import CommandSpec
from rescue.config import RescueConfig
from rescue.findings import Finding
from rescue.kinds import MetricKinds
from rescue.policy import CannotRemedy, Choice, Policy
from rescue.ray_runner import Execution, RayRunner
from rescue.record import RescueReport, RunRecord
from rescue.remedies import Lessons
from rescue.reporting import Metrics
from rescue.resume import Continuation, Progress, resume_entry
from rescue.run_watch import RunWatch
from rescue.stream import MetricStream
from rescue.study import RescueStudy


@dataclass(frozen=True)
class Job:
    script: Path
    entry: str
    config: RescueConfig
    config_file: Path
    command: CommandSpec | None = None  # a plain script run as a process


class Display(Protocol):
    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None: ...
    def reported(self, step: int, metrics: Metrics, findings: list[Finding]) -> None: ...
    def run_ended(self, record: RunRecord) -> None: ...
    def finished(self, report: RescueReport) -> None: ...


class Supervisor:
    def __init__(
        self,
        job: Job,
        policy: Policy,
        runner: RayRunner,
        study: RescueStudy,
        out: Path,
        display: Display,
        report: RescueReport | None = None,
    ) -> None:
        """``report``: the runs so far, when resuming (see :mod:`rescue.resume`)."""
        self.job, self.policy, self.runner, self.study = job, policy, runner, study
        self.out, self.display = out, display
        self.knobs = job.config.knobs
        self.lessons = Lessons()
        self.tried: Counter[tuple[str, str]] = Counter()
        self.report = report or RescueReport(
            script=str(job.script),
            config_file=str(job.config_file),
            out=str(out),
            storage=study.storage,
            study=study.name,
        )
        self.report.knobs = list(job.config.knobs)
        self._clock = time.monotonic()

    def rescue(self, start: Progress | None = None) -> RescueReport:
        """Run until healthy or out of budget; from ``start`` when resuming."""
        cfg = self.job.config
        start = start or Progress()
        self.lessons, self.tried = start.lessons, start.tried
        self._clock = time.monotonic() - start.spent_seconds  # the budget already spent counts
        deadline = self._clock + cfg.budget.seconds if cfg.budget.seconds else None
        config = dict(start.config if start.config is not None else cfg.params)
        search: dict[str, Any] = dict(start.search)
        resume_from = start.resume_from
        changes: dict[str, list[Any]] = {}
        for run in range(start.next_run, cfg.budget.restarts + 1):
            if deadline is not None and time.monotonic() > deadline:
                self.report.summary = f"the wall-clock budget of {cfg.budget.seconds:g} s is spent"
                break
            trial, knob_values = self.study.ask(self.knobs, cfg.knob_values(config), search)
            config = {**config, **knob_values}
            if run:
                previous = self.report.runs[-1]
                changes = {
                    k: [previous.config[k], v]
                    for k, v in knob_values.items()
                    if v != previous.config[k]
                }
                previous.remedy["changes"] = changes
            record = RunRecord(run=run, config=config, trial=trial.number)
            if run == start.next_run:
                record.resumed = start.resumed
                if start.continued is not None:  # recorded again should it stop once more
                    record.checkpoints = list(start.continued.checkpoints)
            self.report.runs.append(record)
            self._save(Progress(run, config, {}, resume_from))  # in flight: restart it as is
            self.display.run_started(record, changes)
            watch = self._run(
                record, resume_from, start.continued if run == start.next_run else None
            )

            if record.verdict is None and record.met_success:
                self._finish_trial(trial, record, watch, remedy=None)
                self.report.outcome = "healthy" if run == 0 else "rescued"
                self.report.final_config = config
                self.report.summary = self._success_summary(record)
                break

            if record.verdict is None:
                self._finish_trial(trial, record, watch, remedy=None)
                self.report.summary = "the run missed success, and the policy watches no target"
                break
            choice = self.policy.choose(
                record.verdict, self.tried, self.knobs, cfg.knob_values(config), self.lessons
            )
            if isinstance(choice, CannotRemedy):
                self._finish_trial(trial, record, watch, remedy=None)
                self.report.summary = choice.reason
                break
            record.remedy = self._remedy_entry(choice, record.verdict)
            self._finish_trial(trial, record, watch, remedy=record.remedy)
            self.tried[(record.verdict.signature, choice.remedy.name)] += 1
            self.lessons.learn(choice.remedy, self.knobs, cfg.knob_values(config))
            search = choice.space
            resume_from = self._resume_point(choice, record)
            self._save(Progress(run + 1, config, search, resume_from))
        else:
            self.report.summary = (
                f"the budget of {cfg.budget.restarts} restarts is spent; "
                f"last finding: {self.report.runs[-1].verdict.reason}"
            )
        if self.report.outcome == "running":
            self.report.outcome = "not_rescued"
        self._save()
        self._render()
        self.display.finished(self.report)
        return self.report

    def _run(
        self, record: RunRecord, resume_from: str | None, continued: Continuation | None = None
    ) -> RunWatch:
        """One run under Ray, watched report by report; ``continued``: an interrupted run
        going on from its last checkpoint (``resume_from``), its reports up to it replayed
        first so that its history, report count and detectors see one run."""
        cfg = self.job.config
        folder = self.out / "runs" / f"run-{record.run:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        stream = MetricStream(MetricKinds(cfg.metric_kinds), cfg.success)
        watch = RunWatch(
            self.policy,
            stream,
            folder / "metrics.jsonl",
            self.display.reported,
            length=self.job.config.budget.reports_per_run,
        )
        started = time.monotonic()
        replayed = continued.reports if continued else []

        def checkpointed(report: int, path: str) -> None:
            """Recorded as it appears, so that `rescue resume` can go on from the last one
            should this process stop; steps go on from the replayed reports."""
            record.checkpoints.append((len(replayed) + report, path))
            self._save()
        try:
            # The detectors are deterministic on the stream, so the reports the interrupted
            # attempt passed give the findings they gave then; one that stops the run now (a
            # cfg changed since) stops it here, before any training.
            if any(watch.on_report(metrics) for metrics in replayed):
                execution = Execution("stopped")
            else:
                execution = self.runner.run(
                    name=f"run-{record.run:03d}",
                    script=str(self.job.script),
                    entry=self.job.entry,
                    config=record.config,
                    watcher=watch,
                    resume_from=resume_from,
                    command=self.job.command,
                    log_dir=str(folder),
                    on_checkpoint=checkpointed,
                )
                # Ray Tune counts this attempt's reports from 1; the run's go on from the replay.
                execution = replace(
                    execution,
                    checkpoints=[(s + len(replayed), p) for s, p in execution.checkpoints],
                )
        finally:
            watch.close()
        if continued:
            earlier = [(s, p) for s, p in continued.checkpoints if s <= watch.stream.step]
            execution = replace(execution, checkpoints=earlier + execution.checkpoints)
        if execution.status == "stopped" and watch.verdict is None and watch.reached_length:
            execution = replace(execution, status="completed")  # stopped at its length: done
        if execution.status == "crashed":
            watch.crashed(execution.error or "")
        elif execution.status == "completed":
            watch.completed()
        self._fill(record, watch, execution, time.monotonic() - started)
        self.display.run_ended(record)
        return watch

    def _fill(self, record: RunRecord, watch: RunWatch, ex: Execution, seconds: float) -> None:
        stream = watch.stream
        record.status = ex.status
        record.reports = stream.step + 1
        record.final_metrics = dict(stream.latest)
        record.findings = list(watch.findings)
        record.seconds = round(seconds, 2)
        record.health = watch.health[-1] if watch.health else None
        record.error = ex.error
        record.met_success = ex.status == "completed" and all(
            name in stream.series and target.met_by(stream.series[name].last)
            for name, target in stream.targets.items()
        )
        record.checkpoints = ex.checkpoints

    def _finish_trial(self, trial, record: RunRecord, watch: RunWatch, remedy) -> None:
        state = {
            "completed": TrialState.COMPLETE,
            "stopped": TrialState.PRUNED,
            "crashed": TrialState.FAIL,
        }[record.status]
        self.study.finish(
            trial,
            state,
            record.health,
            watch.health,
            {
                "run": record.run,
                "status": record.status,
                "findings": [f.to_dict() for f in record.findings],
                "remedy": remedy,
                "config": record.config,
            },
            healthy=record.verdict is None,
        )

    def _remedy_entry(self, choice: Choice, verdict: Finding) -> dict[str, Any]:
        return {
            "name": choice.remedy.name,
            "for": verdict.signature,
            "role": choice.remedy.role,
            "restart": choice.remedy.restart,
            "search_space": {k: repr(v) for k, v in choice.space.items()},
            "changes": {},
        }

    def _resume_point(self, choice: Choice, record: RunRecord) -> str | None:
        if choice.remedy.restart != "checkpoint" or record.verdict is None:
            return None
        onset = record.verdict.onset if record.verdict.onset is not None else record.verdict.step
        before = [path for step, path in record.checkpoints if step < onset]
        return before[-1] if before else None

    def _success_summary(self, record: RunRecord) -> str:
        if record.run == 0:
            return "the first run finished healthy; nothing to rescue"
        causes = [r.verdict.signature for r in self.report.runs if r.verdict is not None]
        return (
            f"run {record.run} finished healthy after {record.run} restart(s) "
            f"for {', '.join(dict.fromkeys(causes))}"
        )

    def _save(self, pending: Progress | None = None) -> None:
        """Write report.json; ``pending``: the run to start (or restart) if this process
        stops before the next save, with the state `rescue resume` needs."""
        self.report.lessons = self.lessons.to_dict()
        if pending is not None:
            pending.lessons, pending.tried = self.lessons, self.tried
            pending.spent_seconds = time.monotonic() - self._clock
            self.report.resume = resume_entry(
                pending, self.job.entry, self.job.command, self.study.seed, self.runner.address
            )
        self.report.write(self.out / "report.json")

    def _render(self) -> None:
        """report.html and plots/ from what was just saved; report.json is already written,
        so a rendering failure costs the page and nothing else."""
        try:
            from rescue.report_writer import write_report  # matplotlib only when needed

            write_report(self.out)
        except Exception as exc:
            print(f"rescue: warning: report.html not written: {exc!r}", file=sys.stderr)
