"""The supervisor: run the job, monitor its metrics, and when a failure signature shows, stop the
run and restart it with the remedy the policy and the evidence of every run so far prescribe,
its new values chosen by Optuna inside the ranges they allow, until a run finishes healthy or
the budget is spent."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from rescue import layout
from rescue.config import RescueConfig
from rescue.detectors.judge import JudgeSpec
from rescue.detectors.run_monitor import RunMonitor
from rescue.engine.display import Display
from rescue.engine.lane import Execution
from rescue.engine.live_run import LiveRun
from rescue.engine.ray_runner import RayRunner
from rescue.engine.record import RescueReport, RunRecord, remedy_entry
from rescue.engine.resume import Continuation, Progress, resume_entry
from rescue.policy import CannotRemedy, Evidence, Observation, Policy, choose, observe
from rescue.search.study import RescueStudy
from rescue.worker.command_line import CommandSpec


@dataclass(frozen=True)
class Job:
    script: Path
    entry: str
    config: RescueConfig
    config_file: Path
    command: CommandSpec | None = None  # a plain script run as a process


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
        """``report``: the runs so far, when resuming (see :mod:`rescue.engine.resume`)."""
        self.job, self.policy, self.runner, self.study = job, policy, runner, study
        self.out, self.display = out, display
        self.knobs = job.config.knobs
        self._polarities = {n: self.policy.polarity(k.role) for n, k in self.knobs.items()}
        self.evidence = Evidence()
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
        self._deadline: float | None = None  # set by rescue(): budget.seconds from its start

    def rescue(self, start: Progress | None = None) -> RescueReport:
        """Run until healthy or out of budget; from ``start`` when resuming."""
        cfg = self.job.config
        start = start or Progress()
        self.evidence, self.tried = start.evidence, start.tried
        self._clock = time.monotonic() - start.spent_seconds  # the budget already spent counts
        deadline = self._clock + cfg.budget.seconds if cfg.budget.seconds else None
        self._deadline = deadline
        config = dict(start.config if start.config is not None else cfg.params)
        search: dict[str, Any] = dict(start.search)
        resume_from = start.resume_from
        changes: dict[str, list[Any]] = {}
        interrupt = getattr(self.runner, "interrupt", None)
        for run in range(start.next_run, cfg.budget.restarts + 1):
            if interrupt is not None and interrupt.requested:
                return self._interrupted(interrupt.name, run, None)
            if deadline is not None and time.monotonic() > deadline:
                self.report.summary = f"the wall-clock budget of {cfg.budget.seconds:g} s is spent"
                break
            asked = self._ask(cfg.knob_values(config), search)
            if asked is None:
                break
            trial, knob_values = asked
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
            monitor = self._run(
                record, resume_from, start.continued if run == start.next_run else None
            )
            if record.status == "interrupted":
                self._finish_trial(trial, record, monitor, remedy=None)
                return self._interrupted(interrupt.name if interrupt else "a signal", run, record)
            if monitor.out_of_time and record.verdict is None:
                self._finish_trial(trial, record, monitor, remedy=None)
                self.report.summary = (
                    f"the wall-clock budget of {cfg.budget.seconds:g} s is spent "
                    f"(run {run} was stopped after {record.reports} reports)"
                )
                break
            observation = self._observe(
                record, monitor, from_checkpoint=resume_from is not None, moved=tuple(search)
            )

            if record.verdict is None and record.met_success:
                self._finish_trial(trial, record, monitor, remedy=None)
                self.report.outcome = "healthy" if run == 0 else "rescued"
                self.report.final_config = config
                self.report.summary = self._success_summary(record)
                break

            if record.verdict is None:
                self._finish_trial(trial, record, monitor, remedy=None)
                self.report.summary = "the run missed success, and the policy watches no target"
                break
            choice = choose(
                self.policy,
                record.verdict,
                observation,
                self.evidence,
                self.knobs,
                cfg.knob_values(config),
                self.tried,
            )
            if isinstance(choice, CannotRemedy):
                self._finish_trial(trial, record, monitor, remedy=None)
                self.report.summary = choice.reason
                if record.verdict.signature == "misconfigured":
                    self.report.summary = f"misconfigured: {record.verdict.reason}"
                break
            record.remedy = remedy_entry(choice, self.policy, record.verdict)
            self._finish_trial(trial, record, monitor, remedy=record.remedy)
            self.tried[(record.verdict.signature, choice.name)] += 1
            search = choice.space
            config = {**config, **choice.reset}
            resume_from = (
                record.checkpoint_before_trouble() if choice.restart == "checkpoint" else None
            )
            self._save(Progress(run + 1, config, search, resume_from))
        else:
            self.report.summary = (
                f"the budget of {cfg.budget.restarts} restarts is spent; "
                f"last finding: {self.report.runs[-1].verdict.reason}"
            )
        if self.report.outcome == "running":
            self.report.outcome = "not_rescued"
        self._save()
        self.display.finished(self.report)
        return self.report

    def _interrupted(self, signal_name: str, run: int, record: RunRecord | None) -> RescueReport:
        """Ctrl-C or SIGTERM: the run in flight is recorded as interrupted (its Optuna trial
        failed); report.json's ``resume`` entry, written when the run started (or when the
        one before ended), is what ``rescue resume`` goes on from."""
        self.report.outcome = "interrupted"
        where = f"during run {run}" if record is not None else f"before run {run}"
        self.report.summary = (
            f"interrupted by {signal_name} {where}; go on with: rescue resume {self.out}"
        )
        self._save()
        self.display.finished(self.report)
        return self.report

    def _ask(
        self, current: dict[str, Any], search: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]] | None:
        """The next run's trial and knob values. A sampling error never ends the supervisor:
        it is recorded, and the values are taken from the middle of the ranges instead; if
        even that fails, the rescue ends with the error as its summary."""
        try:
            return self.study.ask(self.knobs, current, search)
        except Exception as exc:  # Optuna's or a sampler's; the ranges were valid when made
            self.report.warnings.append(f"sampling failed ({exc!r}); took the ranges' middle")
        try:
            return self.study.ask(self.knobs, {**current, **middle_of(search)}, {})
        except Exception as exc:
            self.report.summary = f"sampling the next run failed: {exc!r}"
            return None

    def _observe(
        self,
        record: RunRecord,
        monitor: RunMonitor,
        from_checkpoint: bool = False,
        moved: tuple[str, ...] = (),
    ) -> Observation:
        """The run as evidence (:func:`rescue.policy.observe`), added to the runs so far."""
        observation = self.evidence.add(
            observe(
                self.policy,
                record.run,
                self.job.config.knob_values(record.config),
                record.verdict,
                record.met_success,
                record.health,
                monitor.stream,
                from_checkpoint,
                moved,
            ),
            self._polarities,
        )
        record.evidence = observation.to_dict()
        return observation

    def _run(
        self, record: RunRecord, resume_from: str | None, continued: Continuation | None = None
    ) -> RunMonitor:
        """One run under Ray, watched report by report; ``continued``: an interrupted run
        going on from its last checkpoint (``resume_from``), its reports up to it replayed
        first so that its history, report count and detectors see one run."""
        spec = JudgeSpec.of(self.policy, self.job.config)
        live = LiveRun.start(record, self.out, spec, self.display.reported, self._deadline)
        monitor = live.monitor
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
            if any(monitor.on_report(metrics) for metrics in replayed):
                execution = Execution("stopped")
            else:
                job = self.job
                lane = self.runner.lane(str(job.script), job.entry, job.command, spec)
                execution = lane.run(live.request(resume_from, checkpointed, replayed))
                # Ray Tune counts this attempt's reports from 1; the run's go on from the replay.
                execution = replace(
                    execution,
                    checkpoints=[(s + len(replayed), p) for s, p in execution.checkpoints],
                )
        finally:
            monitor.close()
        if continued:
            earlier = [(s, p) for s, p in continued.checkpoints if s <= monitor.stream.step]
            execution = replace(execution, checkpoints=earlier + execution.checkpoints)
        live.end(execution, self.job.entry, self.job.command)
        record.checkpoints = execution.checkpoints
        self.display.run_ended(record)
        return monitor

    def _finish_trial(self, trial, record: RunRecord, monitor: RunMonitor, remedy) -> None:
        state = {
            "completed": TrialState.COMPLETE,
            "stopped": TrialState.PRUNED,
            "crashed": TrialState.FAIL,
            "interrupted": TrialState.FAIL,  # cut short: nothing for the sampler to learn
        }[record.status]
        if record.verdict is not None and record.verdict.signature == "misconfigured":
            state = TrialState.FAIL  # nothing to learn from: its metrics were not there
        elif (
            record.status == "crashed"
            and record.verdict is not None
            and record.verdict.signature != "crash"
        ):
            state = TrialState.PRUNED  # it raised on NaN: a sick run, which the sampler learns from
        self.study.finish(
            trial,
            state,
            record.health,
            monitor.health,
            {
                "run": record.run,
                "status": record.status,
                "findings": [f.to_dict() for f in record.findings],
                "remedy": remedy,
                "config": record.config,
                **(
                    {"interrupted": "a signal stopped the run"}
                    if record.status == "interrupted"
                    else {}
                ),
            },
            healthy=record.verdict is None,
        )

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
        polarities = self._polarities
        current = self.report.runs[-1].config if self.report.runs else self.job.config.params
        categorical = [n for n, k in self.knobs.items() if k.is_categorical]
        self.report.lessons = self.evidence.lessons(
            self.job.config.knob_values(current), polarities, categorical
        )
        self.report.evidence = self.evidence.per_knob(polarities)
        if pending is not None:
            pending.evidence, pending.tried = self.evidence, self.tried
            pending.spent_seconds = time.monotonic() - self._clock
            self.report.resume = resume_entry(
                pending, self.job.entry, self.job.command, self.study.seed, self.runner.address
            )
        self.report.write(self.out / layout.REPORT_JSON)


def middle_of(search: dict[str, Any]) -> dict[str, Any]:
    """A value inside each distribution: the (geometric) middle of a range, the first choice."""
    import math

    from optuna.distributions import CategoricalDistribution, IntDistribution

    values: dict[str, Any] = {}
    for name, dist in search.items():
        if isinstance(dist, CategoricalDistribution):
            values[name] = dist.choices[0]
            continue
        low, high = dist.low, dist.high
        mid = math.sqrt(low * high) if getattr(dist, "log", False) and low > 0 else (low + high) / 2
        values[name] = round(mid) if isinstance(dist, IntDistribution) else mid
    return values
