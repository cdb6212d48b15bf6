"""The Optuna adapter: every run is a trial of one study, so the sampler sees all runs so far
and ``optuna-dashboard`` shows the whole rescue.

Run 0 is the user's own configuration (enqueued); later runs are asked with the remedy's
distributions for the knobs it changes and the current values, fixed, for the rest.

The storage is an Optuna storage URL (an RDB such as the default SQLite file) or
``journal:PATH``, Optuna's journal file, for file systems where SQLite's locks are unreliable.

A sweep's study (:class:`SweepStudy`) is one study over the knobs' and ``search:`` params' domains,
in the objective's own direction, where every diagnosis teaches the sampler.

A healthy trial is told ``COMPLETE`` with its objective and the constraint ``sick = -1``
(feasible). A diagnosed trial is told ``PRUNED`` with its objective's history as intermediate
values and ``sick`` in [1, 2] (infeasible), graded by its health as a rescue's runs are
(:func:`sickness`). Optuna 5's TPE reads constraints from the trial (``Trial.set_constraint``):
infeasible trials rank below every feasible one, so the configurations that failed land in
TPE's "bad" density and it samples away from them; among them, a trial that ended nearer to
healthy counts as less bad, being nearer the edge of the failure region.
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import PartialFixedSampler
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import Trial, TrialState

from rescue import layout
from rescue.config import Domain, Knob
from rescue.detectors.health import WORST
from rescue.errors import RescueError
from rescue.policy.rules import SearchSettings

MAX_INTERMEDIATE = 200  # reported per trial; a longer run is thinned evenly
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # runs the sampler learns from


def knob_distribution(knob: Knob, value: Any) -> BaseDistribution:
    """The knob's whole domain, integer when the param's value is an integer."""
    if knob.is_categorical:
        return CategoricalDistribution(list(knob.choices))
    if isinstance(value, int) and not isinstance(value, bool):
        return IntDistribution(int(knob.low), int(knob.high), log=knob.log)
    return FloatDistribution(knob.low, knob.high, log=knob.log)


JOURNAL = "journal:"


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / layout.STUDY_DB).resolve()}"


def open_storage(url: str, attempts: int = 10) -> BaseStorage:
    """An RDB URL, or ``journal:PATH`` for Optuna's journal file.

    Processes that open a new RDB at once (sweeps sharing a study) race to create its tables
    and version stamp, and all but one fail (SQLite: a duplicate stamp or a lock; PostgreSQL:
    a table that exists already); a retry finds the tables made.
    """
    if url.startswith(JOURNAL):
        path = Path(url[len(JOURNAL) :]).expanduser().resolve()
        return JournalStorage(JournalFileBackend(str(path)))
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.get_storage(url)
        except (IntegrityError, OperationalError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise AssertionError("unreachable")


def rescue_sampler(
    settings: SearchSettings | None, seed: int | None
) -> optuna.samplers.BaseSampler:
    """TPE with a short start-up, so that it models the study from its second run on: every
    earlier run is a trial, the runs it learns from. ``random`` draws uniformly (log-uniformly
    on log ranges) from the same ranges.

    Every earlier run of a rescue was sick (the rescue ends at the first healthy one), so none
    is a "good" trial for TPE: ranking the least sick as good pulls the draw toward it, which
    is the wrong end of a bracket when the least sick run was too slow. With no good trials
    (``gamma`` 0) TPE's density of good values is its prior over the range and its density of
    bad values is made of every run so far: it draws where no run has failed yet, which in a
    bracket is its middle."""
    settings = settings or SearchSettings()
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # ``gamma`` is deprecated since Optuna 4.9 and stays until 6.0 (the range we ask for);
    # the warning would be printed at every rescue, about a choice made on purpose.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*gamma.*", category=FutureWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=settings.startup, seed=seed, gamma=no_good_trials
        )


def no_good_trials(n: int) -> int:
    """TPE's gamma for a rescue: no earlier run counts as good (see :func:`rescue_sampler`)."""
    return 0


class RescueStudy:
    def __init__(
        self,
        storage: str,
        name: str,
        seed: int | None = None,
        load: bool = False,
        search: SearchSettings | None = None,
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = rescue_sampler(search, seed)
        self.uniform = optuna.samplers.RandomSampler(seed=seed)
        self.storage, self.name, self.seed = storage, name, seed
        self.backend = open_storage(storage)
        try:
            self.study = optuna.create_study(
                storage=self.backend,
                study_name=name,
                sampler=sampler,
                direction="minimize",
                load_if_exists=load,
            )
        except optuna.exceptions.DuplicatedStudyError:
            # A start that stopped before its first run (bad input found once Ray was up)
            # leaves an empty study: taken over. One with trials is another rescue's.
            self.study = optuna.load_study(storage=self.backend, study_name=name, sampler=sampler)
            if self.study.trials:
                raise

    def ask(
        self,
        knobs: dict[str, Knob],
        current: dict[str, Any],
        search: dict[str, BaseDistribution] | None = None,
    ) -> tuple[Trial, dict[str, Any]]:
        """A trial whose knob values are ``current``, except those drawn from ``search``."""
        search = dict(search or {})
        # Optuna requires one set of choices per categorical parameter for a whole study, so a
        # categorical knob keeps its full domain and takes the remedy's first candidate (the
        # policy lists candidates in order of preference); numbers are drawn by the sampler.
        fixed = {name: value for name, value in current.items() if name not in search}
        for name, dist in list(search.items()):
            if isinstance(dist, CategoricalDistribution):
                fixed[name] = dist.choices[0]
                del search[name]
        if fixed:
            self.study.enqueue_trial(fixed, skip_if_exists=False)
        distributions = {
            name: search.get(name) or knob_distribution(knob, current[name])
            for name, knob in knobs.items()
        }
        model = self.study.sampler
        if search and all(self._one_sided(name, dist) for name, dist in search.items()):
            # Every run so far lies on one side of the range: TPE's ratio of densities then
            # only grows away from them and would draw the range's far end every time. There
            # is nothing inside to model, so the draw is uniform (log-uniform on log ranges).
            self.study.sampler = self.uniform
        try:
            trial = self.study.ask(distributions)
        finally:
            self.study.sampler = model
        return trial, {name: trial.params[name] for name in knobs}

    def _one_sided(self, name: str, dist: BaseDistribution) -> bool:
        """Whether every finished run's value of ``name`` lies at or beyond one end of the
        numeric range ``dist``."""
        if not isinstance(dist, FloatDistribution | IntDistribution):
            return False
        values = [
            t.params[name]
            for t in self.study.get_trials(deepcopy=False, states=FINISHED)
            if name in t.params
        ]
        return all(v >= dist.high for v in values) or all(v <= dist.low for v in values)

    def finish(
        self,
        trial: Trial,
        state: TrialState,
        value: float | None,
        intermediate: Sequence[float],
        attrs: dict[str, Any],
        healthy: bool,
    ) -> None:
        """Record a run: its health over time, its findings, and how it ended."""
        for step, v in thin_history(intermediate):
            trial.report(v, step)
        for key, attr in attrs.items():
            trial.set_user_attr(key, json.loads(json.dumps(attr, default=str)))
        # Feasibility teaches the sampler where the failure region is (Optuna 5 constraints);
        # graded by health, so that among sick runs the least sick ranks best.
        trial.set_constraint("sick", -1.0 if healthy else sickness(value))
        if state == TrialState.COMPLETE:
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=state)

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def close_interrupted(self, note: str) -> list[int]:
        return close_interrupted(self.study, self.backend, note)


def close_interrupted(
    study: optuna.Study,
    backend: BaseStorage,
    note: str,
    owned: Callable[[optuna.trial.FrozenTrial], bool] | None = None,
) -> list[int]:
    """Fail the trials a killed supervisor left open (running, or enqueued and never asked),
    with ``note`` as their ``interrupted`` attribute: the sampler ignores failed trials, and a
    stale enqueued trial would otherwise hand its values to the next run. ``owned``: only the
    trials it accepts (a study shared by several sweeps). Returns their numbers."""
    study_id = backend.get_study_id_from_name(study.study_name)
    closed = []
    for trial in study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING)):
        if owned is not None and not owned(trial):
            continue
        trial_id = backend.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        backend.set_trial_user_attr(trial_id, "interrupted", note)
        backend.set_trial_state_values(trial_id, TrialState.FAIL)
        closed.append(trial.number)
    return closed


def sickness(health: float | None) -> float:
    """The constraint value of a sick run, a rescue's or a sweep's: in [1, 2], lower for a
    run closer to healthy (its health, :mod:`rescue.detectors.health`).

    >>> sickness(None), sickness(-WORST), sickness(0.0) < sickness(WORST)
    (2.0, 1.0, True)
    """
    if health is None or not math.isfinite(health):
        return 2.0
    return 1.0 + min(max((health + WORST) / (2 * WORST), 0.0), 1.0)


def thin_history(values: Sequence[float]) -> list[tuple[int, float]]:
    """(step, value) of the finite values, at most MAX_INTERMEDIATE of them and the last."""
    finite = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
    if len(finite) <= MAX_INTERMEDIATE:
        return finite
    stride = len(finite) / MAX_INTERMEDIATE
    picked = [finite[int(k * stride)] for k in range(MAX_INTERMEDIATE)]
    if picked[-1] != finite[-1]:
        picked.append(finite[-1])
    return picked


# ---------------------------------------------------------------- sweeps

Mode = Literal["min", "max"]


def startup_trials(n_trials: int) -> int:
    """Random trials before TPE models the results: Optuna's 10, fewer in a small sweep, so a
    sweep of 8 already learns from its diagnoses.

    >>> startup_trials(8), startup_trials(20), startup_trials(100)
    (2, 5, 10)
    """
    return max(2, min(10, n_trials // 4))


def domains_space(domains: Mapping[str, Domain], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Each param's whole domain as an Optuna distribution (integer for an integer default)."""
    return {name: knob_distribution(domain, defaults[name]) for name, domain in domains.items()}  # type: ignore[arg-type]


class SweepStudy:
    """``owner`` tags every trial this sweep asks (user attribute ``sweep``), so that several
    sweeps can share one study (``load``: join it if it exists) and a resumed sweep closes
    only the trials it left open."""

    def __init__(
        self,
        storage: str | None,
        name: str,
        mode: Mode,
        n_trials: int,
        seed: int | None = None,
        load: bool = False,
        owner: str = "",
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(n_trials))
        self.storage, self.name, self.owner = storage, name, owner
        # As a rescue's; None: in memory.
        self.backend = open_storage(storage) if storage else optuna.storages.InMemoryStorage()
        direction = "minimize" if mode == "min" else "maximize"
        try:
            self.study = optuna.create_study(
                storage=self.backend,
                study_name=name,
                sampler=sampler,
                direction=direction,
                load_if_exists=load,
            )
        except optuna.exceptions.DuplicatedStudyError:
            # A start killed before its first trial leaves an empty study: taken over, as a
            # rescue's is. One with trials is another sweep's.
            self.study = optuna.load_study(storage=self.backend, study_name=name, sampler=sampler)
            if self.study.trials:
                raise RescueError(
                    f"{storage}: a study named {name!r} exists already (give another name, or "
                    "join it on purpose)"
                ) from None
        if self.study.direction.name.lower() != direction:
            raise RescueError(
                f"{storage}: study {name!r} {self.study.direction.name.lower()}s its objective; "
                f"expected one that {direction}s it (--mode)"
            )

    def close_interrupted(self, note: str) -> list[int]:
        """Fail this sweep's trials that a killed supervisor left running."""
        return close_interrupted(
            self.study,
            self.backend,
            note,
            owned=lambda trial: trial.user_attrs.get("sweep") == self.owner,
        )

    def close_cut(self, trial: Trial, run: int) -> None:
        """A trial the sweep's wall-clock budget stopped: failed, with a ``cut`` attribute, so
        that no sampler learns from a run cut short."""
        trial.set_user_attr("run", run)
        trial.set_user_attr("cut", "stopped: the wall-clock budget (budget.seconds) was spent")
        self.study.tell(trial, state=TrialState.FAIL)

    def ask(
        self,
        space: Mapping[str, BaseDistribution],
        fixed: Mapping[str, Any] | None = None,
    ) -> tuple[Trial, dict[str, Any]]:
        """A trial sampled from ``space``, except the params in ``fixed`` (a rescue keeps the
        sick trial's values for what its remedy does not change; a rerun keeps them all).
        Fixed values go through this process's sampler, not the study's queue, which another
        sweep sharing the study could take them from."""
        sampler = self.study.sampler
        if fixed:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.sampler = PartialFixedSampler(dict(fixed), sampler)
        try:
            trial = self.study.ask(dict(space))
        finally:
            self.study.sampler = sampler
        trial.set_user_attr("sweep", self.owner)
        return trial, dict(trial.params)

    def finish(
        self,
        trial: Trial,
        value: float | None,
        history: Sequence[float],
        sick: bool,
        health: float | None,
        attrs: Mapping[str, Any],
        crashed: bool = False,
    ) -> None:
        """Tell the study how a trial ended; see the module docstring."""
        for key, attr in attrs.items():
            trial.set_user_attr(key, json.loads(json.dumps(attr, default=str)))
        if crashed:  # a bug in the script says nothing about the params
            self.study.tell(trial, state=TrialState.FAIL)
            return
        for step, v in thin_history(history):
            trial.report(v, step)
        trial.set_constraint("sick", sickness(health) if sick else -1.0)
        if sick or value is None or not math.isfinite(value):
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, value)
