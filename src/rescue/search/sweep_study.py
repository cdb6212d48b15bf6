"""The Optuna adapter of a sweep: one study over the knobs' and ``search:`` params' domains,
in the objective's own direction, where every diagnosis teaches the sampler.

A healthy trial is told ``COMPLETE`` with its objective and the constraint ``sick = -1``
(feasible). A diagnosed trial is told ``PRUNED`` with its objective's history as intermediate
values and ``sick = 1 + 1/(reports + 1)`` (infeasible). Optuna 5's TPE reads constraints from
the trial (``Trial.set_constraint``): infeasible trials rank below every feasible one, so the
configurations that failed land in TPE's "bad" density and it samples away from them; among
them, a trial that ran longer before its diagnosis counts as less bad, being nearer the edge
of the failure region.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import PartialFixedSampler
from optuna.trial import Trial, TrialState

from rescue.config import Domain
from rescue.errors import RescueError
from rescue.search.study import close_interrupted, knob_distribution, open_storage, thin_history

Mode = Literal["min", "max"]


def sick_constraint(reports: int) -> float:
    """The constraint of a diagnosed trial: > 1, larger for one stopped earlier.

    >>> sick_constraint(0), sick_constraint(9)
    (2.0, 1.1)
    """
    return 1.0 + 1.0 / (max(reports, 0) + 1)


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
        reports: int,
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
        trial.set_constraint("sick", sick_constraint(reports) if sick else -1.0)
        if sick or value is None or not math.isfinite(value):
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, value)
