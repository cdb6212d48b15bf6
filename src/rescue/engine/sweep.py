"""A sweep: an Optuna search over the knobs' and ``search:`` params' domains in which every
trial is watched by the same detectors and policy as a single rescue. A sick trial is stopped
at its diagnosis, and the diagnosis is told to the study so the sampler learns the failure
region (see :mod:`rescue.search.study`). With ``rescue_sick`` a diagnosed trial is restarted
once with the remedy the policy prescribes, as the next trial of the budget: chosen as a
rescue's restart is, from the trial's evidence and what every trial so far taught about each
knob (:mod:`rescue.policy.evidence`), and from its last checkpoint before the trouble when the
remedy says ``restart: checkpoint``.

The loop is Ray-free: it hands each trial to a lane (:mod:`rescue.engine.lane`, the one a
rescue's runs go through, with K slots), which runs it as a trial of the sweep's Ray Tune
experiment and says how it ended; each trial starts and ends as a rescue's run does
(:mod:`rescue.engine.live_run`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from rescue import layout
from rescue.config import Domain, RescueConfig, Target
from rescue.detectors.findings import Finding
from rescue.detectors.judge import JudgeSpec
from rescue.engine.lane import Execution, RunRequest
from rescue.engine.live_run import LiveRun
from rescue.engine.record import RescueReport, RunRecord, remedy_entry
from rescue.errors import RescueError
from rescue.policy import CannotRemedy, Choice, Evidence, Observation, Policy, choose, observe
from rescue.search.study import Mode, SweepStudy, domains_space
from rescue.worker.command_line import CommandSpec
from rescue.worker.reporting import Metrics

TOP = 10  # leaderboard rows shown in the terminal; report.json lists every trial


@dataclass(frozen=True)
class Objective:
    """What the sweep optimises: one metric's last reported value, in a direction."""

    metric: str
    mode: Mode
    target: Target | None = None

    def describe(self) -> str:
        return f"{self.metric} ({'lower' if self.mode == 'min' else 'higher'} is better)"


def choose_objective(
    config: RescueConfig, metric: str | None = None, mode: str | None = None
) -> Objective:
    """``--metric``/``--mode`` when given, else the first ``success:`` metric, its direction
    from ``below``/``above``.

    >>> from rescue.config import RescueConfig
    >>> cfg = RescueConfig(params={"lr": 0.1}, knobs={}, success={"loss": {"below": 0.05}})
    >>> choose_objective(cfg)
    Objective(metric='loss', mode='min', target=Target(below=0.05, above=None))
    >>> choose_objective(cfg, "acc", "max").mode
    'max'
    """
    if mode is not None and mode not in ("min", "max"):
        raise RescueError(f"--mode: expected min or max, got {mode!r}")
    if metric is not None:
        target = config.success.get(metric)
        if mode is None:
            if target is None:
                raise RescueError(f"--metric {metric}: expected --mode min|max with it")
            mode = "min" if target.below is not None else "max"
        return Objective(metric, mode, target)  # type: ignore[arg-type]
    if not config.success:
        raise RescueError(
            "rescue sweep: expected an objective: a success: section in the cfg.yaml, "
            "or --metric NAME --mode min|max"
        )
    name, target = next(iter(config.success.items()))
    return Objective(name, "min" if target.below is not None else "max", target)


@dataclass
class SweepTrial(RunRecord):
    """One trial of a sweep: a run record, with the objective it reached and its verdict.

    ``outcome`` is ``healthy`` for a trial that ran to its end (end-of-run findings such as a
    missed target are listed, but the objective already says how good it is), ``diagnosed``
    for one stopped at a finding or crashed, ``cut`` for one stopped because the sweep's
    wall-clock budget (``budget.seconds``) was spent.
    """

    objective: float | None = None
    outcome: Literal["running", "healthy", "diagnosed", "cut"] = "running"
    rescue_of: int | None = None

    @property
    def diagnosis(self) -> Finding | None:
        return self.verdict if self.outcome == "diagnosed" else None

    def params(self, names: list[str]) -> dict[str, Any]:
        return {name: self.config[name] for name in names if name in self.config}

    def row(self, names: list[str]) -> dict[str, Any]:
        """Its leaderboard entry in report.json."""
        diagnosis = self.diagnosis
        return {
            "trial": self.run,
            "params": self.params(names),
            "objective": self.objective,
            "status": self.outcome,
            "signature": diagnosis.signature if diagnosis else None,
            "finding": diagnosis.to_dict() if diagnosis else None,
            "reports": self.reports,
            "met_success": self.met_success,
            "rescue_of": self.rescue_of,
        }


def rank(trials: list[SweepTrial], mode: Mode) -> list[SweepTrial]:
    """Healthy trials by objective (best first), then healthy ones without a finite objective,
    then diagnosed ones, those that ran longer first.

    >>> a = SweepTrial(0, {}, objective=0.3, outcome="healthy")
    >>> b = SweepTrial(1, {}, objective=0.1, outcome="healthy")
    >>> c = SweepTrial(2, {}, reports=9, outcome="diagnosed")
    >>> [t.run for t in rank([c, a, b], "min")], [t.run for t in rank([c, a, b], "max")]
    ([1, 0, 2], [0, 1, 2])
    """
    sign = 1.0 if mode == "min" else -1.0

    def key(trial: SweepTrial) -> tuple[int, float, int]:
        value = trial.objective
        if trial.outcome == "healthy" and value is not None and math.isfinite(value):
            return (0, sign * value, trial.run)
        if trial.outcome == "healthy":
            return (1, 0.0, trial.run)
        return (2, -float(trial.reports), trial.run)

    return sorted((t for t in trials if t.outcome != "running"), key=key)


def signature_counts(trials: list[SweepTrial]) -> dict[str, int]:
    """Trials per diagnosis, ``healthy`` for those that ran to their end, most common first.

    >>> f = Finding("divergence", "loss", 9, "rose")
    >>> counts = signature_counts([SweepTrial(0, {}, outcome="healthy"),
    ...     SweepTrial(1, {}, findings=[f], outcome="diagnosed")])
    >>> counts
    {'healthy': 1, 'divergence': 1}
    """
    counts: Counter[str] = Counter()
    for trial in trials:
        if trial.outcome == "healthy":
            counts["healthy"] += 1
        elif trial.outcome == "diagnosed":
            diagnosis = trial.diagnosis
            counts[diagnosis.signature if diagnosis else "unknown"] += 1
        elif trial.outcome == "cut":
            counts["cut"] += 1
    return dict(counts.most_common())


@dataclass
class SweepReport(RescueReport):
    """report.json of a sweep: a rescue's report whose ``runs`` are the trials, plus the
    objective, the ranked ``trials`` and the count of trials per signature."""

    objective: Objective | None = None
    params: list[str] = field(default_factory=list)
    best_trial: int | None = None
    requested: int = 0

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome == "healthy" else 3

    def ranked(self) -> list[SweepTrial]:
        mode = self.objective.mode if self.objective else "min"
        return rank(self.runs, mode)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepReport:
        """The report :meth:`to_dict` wrote, its runs as trials (for ``rescue resume``)."""
        known = {k: v for k, v in data.items() if k in RescueReport.__dataclass_fields__}
        known["runs"] = [SweepTrial.from_dict(r) for r in data.get("runs") or []]
        sweep = data["sweep"]
        report = cls(**known)
        if sweep.get("objective"):
            target = sweep.get("target")
            report.objective = Objective(
                sweep["objective"], sweep["mode"], Target(**target) if target else None
            )
        report.best_trial, report.requested = sweep.get("best_trial"), sweep["requested_trials"]
        report.params = list(sweep.get("params") or [])
        return report

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        objective = self.objective
        data["sweep"] = {
            "objective": objective.metric if objective else None,
            "mode": objective.mode if objective else None,
            "target": objective.target.model_dump(exclude_none=True)
            if objective and objective.target
            else None,
            "params": self.params,
            "requested_trials": self.requested,
            "best_trial": self.best_trial,
            "signatures": signature_counts(self.runs),  # type: ignore[arg-type]
        }
        data["trials"] = [t.row(self.params) for t in self.ranked()]
        return data


class SweepDisplay(Protocol):
    def trial_started(self, trial: SweepTrial, changes: dict[str, list[Any]]) -> None: ...
    def finding(self, trial: SweepTrial, finding: Finding) -> None: ...
    def trial_ended(self, trial: SweepTrial) -> None: ...
    def finished(self, report: SweepReport) -> None: ...


@dataclass
class _Live:
    trial: SweepTrial
    optuna_trial: Any
    run: LiveRun
    request: RunRequest
    history: list[float] = field(default_factory=list)  # the objective, report by report
    moved: tuple[str, ...] = ()  # what a rescue's remedy drew anew


class Lanes(Protocol):
    """What runs the sweep's trials (:class:`~rescue.engine.lane.Lane`)."""

    def run(self, request: RunRequest) -> Execution: ...


class SweepLoop:
    """Runs the sweep's trials on a lane, K at a time: asks the study for each trial's params,
    monitors its reports, and tells the study how it ended. Each of the K slots is a thread
    that runs one trial after another, as a rescue's loop runs one run after another."""

    def __init__(
        self,
        config: RescueConfig,
        policy: Policy,
        study: SweepStudy,
        objective: Objective,
        n_trials: int,
        out: Path,
        report: SweepReport,
        display: SweepDisplay,
        rescue_sick: bool = False,
        entry: str = "train",
        command: CommandSpec | None = None,
    ) -> None:
        """``entry``, ``command``: what each trial runs, for the words of a misconfigured
        trial's reason."""
        self.config, self.policy, self.study, self.objective = config, policy, study, objective
        self.n_trials, self.out, self.report, self.display = n_trials, out, report, display
        self.rescue_sick, self.entry, self.command = rescue_sick, entry, command
        # A trial that ended without the metrics the cfg needs: every other would too, so no
        # further trial starts (as a rescue ends at it).
        self.misconfigured: Finding | None = None
        self.domains: dict[str, Domain] = {**config.knobs, **config.search}
        self.space = domains_space(self.domains, config.params)
        self.live: dict[int, _Live] = {}  # by trial number
        self.rescues: deque[tuple[SweepTrial, Choice]] = deque()
        # What every trial so far says of its knob values; a sick trial's remedy reads it.
        self.evidence = Evidence()
        self._polarities = {n: policy.polarity(k.role) for n, k in config.knobs.items()}
        self.redo: deque[SweepTrial] = deque()  # trials a killed supervisor left in flight
        self.stopping = False  # a signal interrupted the sweep: no trial starts
        # The slots' threads start and end trials; the study and report.json are one.
        self._lock = threading.RLock()
        spent = float(report.resume.get("spent_seconds") or 0.0)
        self._clock = time.monotonic() - spent  # a resumed sweep's budget counts what was spent
        budget = config.budget.seconds
        self.deadline = self._clock + budget if budget else None
        report.objective, report.params, report.requested = objective, list(self.domains), n_trials
        report.knobs = list(self.domains)

    @property
    def asked(self) -> int:
        return len(self.report.runs)

    def run(self, lanes: Lanes, parallel: int) -> None:
        """Every trial the budget allows, ``parallel`` at a time, on ``lanes``. A trial that
        a signal interrupted stays in flight (``running`` in report.json, for ``rescue
        resume``), and no further trial starts."""
        failures: list[BaseException] = []

        def slot() -> None:
            try:
                while (live := self.next_trial()) is not None:
                    execution = lanes.run(live.request)
                    if execution.status == "interrupted":
                        self.stopping = True
                        return
                    self.ended(live, execution)
            except BaseException as exc:  # raised again in the caller's thread
                self.stopping = True
                failures.append(exc)

        threads = [
            threading.Thread(target=slot, name=f"rescue-sweep-slot-{i}", daemon=True)
            for i in range(max(1, parallel))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # with a timeout: a signal is handled meanwhile
                thread.join(0.2)
        if failures:
            raise failures[0]

    def next_trial(self) -> _Live | None:
        """The next trial, started (its folder, its monitor, its Optuna trial, report.json
        saying it is in flight); None when the budget is spent."""
        with self._lock:
            if self.stopping or self.misconfigured is not None:
                return None
            if self.deadline is not None and time.monotonic() > self.deadline:
                return None
            if self.redo:
                trial = self.redo.popleft()
                return self._start(trial, self._rerun(trial), {})
            if self.asked >= self.n_trials:
                return None
            changes: dict[str, list[Any]] = {}
            parent: SweepTrial | None = None
            choice: Choice | None = None
            if self.rescues:
                parent, choice = self.rescues.popleft()
                space, fixed = self._rescue_space(parent, choice)
                optuna_trial, values = self.study.ask(space, fixed)
            else:
                optuna_trial, values = self.study.ask(self.space)
            config = {**self.config.params, **values}
            trial = SweepTrial(run=self.asked, config=config, trial=optuna_trial.number)
            if parent is not None:
                trial.rescue_of = parent.run
                changes = {
                    k: [parent.config[k], v] for k, v in values.items() if v != parent.config[k]
                }
                if parent.remedy is not None:
                    parent.remedy["changes"] = changes
            self.report.runs.append(trial)
            return self._start(trial, optuna_trial, changes, parent, choice)

    def take_over(self, note_for: Callable[[SweepTrial], dict[str, Any]]) -> list[SweepTrial]:
        """Go on with a sweep whose supervisor stopped (:mod:`rescue.engine.resume`): trials
        it left in flight run again with the same params, noted with ``note_for(trial)``; a
        diagnosed trial whose in-place rescue had not started is queued again."""
        runs = self.report.runs
        interrupted = []
        for index, trial in enumerate(runs):
            if trial.outcome != "running":
                continue
            fresh = SweepTrial(trial.run, dict(trial.config), rescue_of=trial.rescue_of)
            fresh.resumed = note_for(trial)
            runs[index] = fresh
            self.redo.append(fresh)
            interrupted.append(fresh)
        self.evidence = Evidence()
        for trial in runs:  # in run order: the order they ended in was not kept
            if trial.evidence is not None:
                self.evidence.observations.append(Observation.from_dict(trial.evidence))
            verdict = trial.verdict
            if verdict is not None and verdict.signature == "misconfigured":
                self.misconfigured = self.misconfigured or verdict
        rescued = {t.rescue_of for t in runs if t.rescue_of is not None}
        for trial in runs:
            if trial.remedy is not None and trial.run not in rescued:
                choice = self._remedy_for(trial)
                if choice is not None:
                    self.rescues.append((trial, choice))
        return interrupted

    def _rerun(self, trial: SweepTrial) -> Any:
        """An interrupted trial's new Optuna trial, all its params fixed to the trial's."""
        optuna_trial, _ = self.study.ask(self.space, trial.params(list(self.domains)))
        trial.trial = optuna_trial.number
        return optuna_trial

    def _start(
        self,
        trial: SweepTrial,
        optuna_trial: Any,
        changes: dict[str, list[Any]],
        parent: SweepTrial | None = None,
        choice: Choice | None = None,
    ) -> _Live:
        """``parent``, ``choice``: the sick trial this one rescues, and its remedy; a remedy
        that restarts from a checkpoint goes on from the sick trial's last one before the
        trouble (every other trial starts afresh, also when run again)."""
        history: list[float] = []

        def listener(step: int, metrics: Metrics, findings: list[Finding]) -> None:
            value = metrics.get(self.objective.metric)
            if isinstance(value, float):
                history.append(value)
            for finding in findings:
                self.display.finding(trial, finding)

        def checkpointed(report: int, path: str) -> None:
            trial.checkpoints.append((report, path))

        run = LiveRun.start(trial, self.out, self.judge_spec, listener, self.deadline)
        resume_from = None
        if parent is not None and choice is not None and choice.restart == "checkpoint":
            resume_from = parent.checkpoint_before_trouble()
        request = run.request(resume_from, checkpointed)
        moved = tuple(choice.space) if choice is not None else ()
        live = _Live(trial, optuna_trial, run, request, history, moved)
        self.live[trial.run] = live
        self.display.trial_started(trial, changes)
        self._save()  # in flight: `rescue resume` runs it again if this process stops
        return live

    @property
    def judge_spec(self) -> JudgeSpec:
        """How each trial is judged, in its worker and by its monitor here."""
        return JudgeSpec.of(self.policy, self.config)

    def ended(self, live: _Live, execution: Execution) -> None:
        """Trial ``live`` ended as ``execution`` says: by itself, stopped at its monitor's
        request, or crashed."""
        with self._lock:
            if self.live.pop(live.trial.run, None) is None:
                return
            self._end(live, execution)

    def _end(self, live: _Live, execution: Execution) -> None:
        trial = live.trial
        live.run.end(execution, self.entry, self.command)
        monitor = live.run.monitor
        verdict = monitor.verdict
        # Stopped without a finding: the wall-clock budget was spent (a stop at the declared
        # length is a completion).
        cut = trial.status == "stopped" and verdict is None
        misconfigured = verdict is not None and verdict.signature == "misconfigured"
        if misconfigured and self.misconfigured is None:
            self.misconfigured = verdict
        healthy = trial.status == "completed" and not misconfigured
        trial.outcome = "healthy" if healthy else "cut" if cut else "diagnosed"
        series = monitor.stream.series.get(self.objective.metric)
        trial.objective = series.last if series is not None else None
        # A crash is a bug in the script, unless it raised on NaN (then it is a sick run); a
        # trial without the metrics the cfg needs says nothing about its params either.
        bug = misconfigured or (
            trial.status == "crashed" and (verdict is None or verdict.signature == "crash")
        )
        if not cut and not bug:  # what its knob values did, for the rescues to come
            observation = self.evidence.add(
                observe(
                    self.policy,
                    trial.run,
                    {k: trial.config[k] for k in self.config.knobs},
                    trial.verdict,
                    trial.met_success,
                    trial.health,
                    monitor.stream,
                    from_checkpoint=live.request.resume_from is not None,
                    moved=live.moved,
                ),
                self._polarities,
            )
            trial.evidence = observation.to_dict()
        if trial.outcome == "diagnosed" and not bug:
            self._maybe_rescue(trial)
        if cut:  # says nothing about its params: no sampler learns from it
            self.study.close_cut(live.optuna_trial, trial.run)
            self.display.trial_ended(trial)
            self._save()
            return
        self.study.finish(
            live.optuna_trial,
            trial.objective,
            live.history,
            sick=trial.outcome == "diagnosed",
            health=trial.health,
            attrs={
                "run": trial.run,
                "status": trial.status,
                "findings": [f.to_dict() for f in trial.findings],
                "remedy": trial.remedy,
                "rescue_of": trial.rescue_of,
            },
            crashed=bug,
        )
        self.display.trial_ended(trial)
        self._save()

    def interrupted(self, signal_name: str) -> SweepReport:
        """Ctrl-C or SIGTERM stopped the sweep: the trials in flight stay ``running`` in
        report.json (``rescue resume`` runs them again) and their Optuna trials are failed with
        an ``interrupted`` attribute, so that no sampler learns from a run cut short."""
        note = f"{signal_name} stopped the sweep during this trial; rescue resume goes on"
        self.study.close_interrupted(note)
        for live in self.live.values():
            live.run.monitor.close()
        self.live.clear()
        ended = sum(t.outcome != "running" for t in self.report.runs)
        self.report.outcome = "interrupted"  # type: ignore[assignment]
        self.report.summary = (
            f"{signal_name} stopped the sweep after {ended} of {self.n_trials} trials ended"
        )
        self._save()
        return self.report

    def result(self) -> SweepReport:
        """Close the sweep: the best healthy trial, the outcome and why."""
        for live in list(self.live.values()):  # trials no slot saw end
            self.ended(live, Execution("crashed", "the trial did not end before the sweep did"))
        report = self.report
        done = [t for t in report.runs if isinstance(t, SweepTrial)]
        healthy = [t for t in rank(done, self.objective.mode) if t.outcome == "healthy"]
        met = [t for t in healthy if t.met_success]
        best = (met or healthy or [None])[0]
        counts = signature_counts(done)
        diagnosed = ", ".join(f"{k} x{v}" for k, v in counts.items() if k != "healthy")
        tail = ""
        if diagnosed:
            tail = f"; {len(done) - len(healthy)} of {len(done)} diagnosed ({diagnosed})"
        name = self.objective.metric
        target = self.objective.target
        if best is not None:
            report.best_trial, report.final_config = best.run, best.config
        if not done:
            report.summary = "no trial ran"
        elif self.misconfigured is not None:
            report.summary = f"misconfigured: {self.misconfigured.reason}"
        elif best is None:
            report.summary = f"no healthy trial: all {len(done)} were diagnosed ({diagnosed})"
        elif target is not None and not best.met_success:
            report.summary = (
                f"no healthy trial met success; the best, trial {best.run}, reached "
                f"{name} {_num(best.objective)} (target {target.describe()}){tail}"
            )
        else:
            met_text = f" (target {target.describe()})" if target is not None else ""
            report.summary = (
                f"trial {best.run} is the best healthy trial: {name} "
                f"{_num(best.objective)}{met_text}{tail}"
            )
        cut = sum(t.outcome == "cut" for t in done)
        if cut:
            report.summary += (
                f"; the wall-clock budget of {self.config.budget.seconds:g} s was spent "
                f"({cut} trial{'s' if cut > 1 else ''} cut short)"
            )
        ok = best is not None and (target is None or best.met_success)
        report.outcome = "healthy" if ok else "not_found"  # type: ignore[assignment]
        self._save()
        self.display.finished(report)
        return report

    def _save(self) -> None:
        """report.json, with the time spent so far in its ``resume`` entry."""
        if self.report.resume:
            self.report.resume["spent_seconds"] = round(time.monotonic() - self._clock, 2)
        self.report.evidence = self.evidence.per_knob(self._polarities)
        self.report.write(self.out / layout.REPORT_JSON)

    def _remedy_for(self, trial: SweepTrial) -> Choice | None:
        """The policy's remedy for a diagnosed trial, chosen as a rescue's restart is: the
        trial is the start of its own line of runs, and every other trial bounds the knobs."""
        verdict = trial.verdict
        if verdict is None or trial.evidence is None:
            return None
        observation = Observation.from_dict(trial.evidence)
        others = [o for o in self.evidence.observations if o.run != trial.run]
        evidence = Evidence([*others, observation], since=len(others))
        knob_values = {k: trial.config[k] for k in self.config.knobs}
        knobs = dict(self.config.knobs)
        choice = choose(self.policy, verdict, observation, evidence, knobs, knob_values, Counter())
        return None if isinstance(choice, CannotRemedy) else choice

    def _maybe_rescue(self, trial: SweepTrial) -> None:
        """Queue one restart of a diagnosed trial with the policy's remedy (never of a rescue)."""
        if not self.rescue_sick or trial.rescue_of is not None:
            return
        if self.asked + len(self.rescues) >= self.n_trials:
            return
        choice = self._remedy_for(trial)
        if choice is None:
            return
        trial.remedy = remedy_entry(choice, self.policy, trial.verdict)
        self.rescues.append((trial, choice))

    def _rescue_space(self, parent: SweepTrial, choice: Choice) -> tuple[dict, dict]:
        """The remedy's ranges for what it changes; the sick trial's values for the rest.
        Optuna keeps one set of choices per categorical param, so a categorical remedy takes
        its first (preferred) candidate, as in a single rescue."""
        fixed = {name: parent.config[name] for name in self.domains if name not in choice.space}
        space = dict(self.space)
        for name, dist in choice.space.items():
            if hasattr(dist, "choices"):
                fixed[name] = dist.choices[0]
            else:
                space[name] = dist
        return space, fixed


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
