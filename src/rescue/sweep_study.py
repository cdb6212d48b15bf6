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
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import Trial, TrialState

from rescue.config import Domain
from rescue.study import knob_distribution, open_storage, thin_history

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
    def __init__(
        self,
        storage: str | None,
        name: str,
        mode: Mode,
        n_trials: int,
        seed: int | None = None,
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(n_trials))
        self.storage, self.name = storage, name
        self.study = optuna.create_study(
            storage=open_storage(storage) if storage else None,  # as a rescue; None: in memory
            study_name=name,
            sampler=sampler,
            direction="minimize" if mode == "min" else "maximize",
        )

    def ask(
        self,
        space: Mapping[str, BaseDistribution],
        fixed: Mapping[str, Any] | None = None,
    ) -> tuple[Trial, dict[str, Any]]:
        """A trial sampled from ``space``, except the params in ``fixed`` (a rescue keeps the
        sick trial's values for what its remedy does not change)."""
        if fixed:
            self.study.enqueue_trial(dict(fixed), skip_if_exists=False)
        trial = self.study.ask(dict(space))
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
