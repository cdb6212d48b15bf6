"""The Ray adapter of a sweep: trials run K at a time as Ray Tune trials. A Tune ``Searcher``
asks the sweep loop for each trial's config, a ``Stopper`` hands it every result and stops the
trial it diagnoses, and a ``Callback`` tells it when a trial ended (or crashed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ray import tune
from ray.tune.search import Searcher

from rescue.ray_runner import RayRunner, user_metrics
from rescue.reporting import Metrics, clear_report_sources
from rescue.tune_sink import run_user_train


class TrialSource(Protocol):
    """What the adapter needs of :class:`~rescue.sweep.SweepLoop`."""

    def suggest(self, key: str) -> dict[str, Any] | None: ...
    def on_report(self, key: str, metrics: Metrics) -> bool: ...
    def finish(self, key: str, error: str | None = None) -> None: ...


class _LoopSearcher(Searcher):
    """Configs come from the loop (and its Optuna study); Tune only schedules them."""

    def __init__(self, loop: TrialSource | None) -> None:
        super().__init__()
        self.loop = loop

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the loop has its own objective and space

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        config = self.loop.suggest(trial_id) if self.loop is not None else None
        return Searcher.FINISHED if config is None else config

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass  # the callback below, which also sees the error, tells the loop

    def save(self, checkpoint_path: str) -> None:
        pass  # the study is the sweep's state; Tune's experiment restore is not used

    def restore(self, checkpoint_path: str) -> None:
        pass

    def __reduce__(self):  # Tune pickles its tune config; the copy is inert
        return (_LoopSearcher, (None,))


class _SweepStopper(tune.Stopper):
    def __init__(self, loop: TrialSource | None) -> None:
        self.loop = loop
        self._last: dict[str, int] = {}
        self._stopped: set[str] = set()

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        iteration = result.get("training_iteration", 0)
        if self.loop is None or iteration <= self._last.get(trial_id, 0):
            return trial_id in self._stopped  # Tune repeats the last result when a trial ends
        self._last[trial_id] = iteration
        if self.loop.on_report(trial_id, user_metrics(result)):
            self._stopped.add(trial_id)
        return trial_id in self._stopped

    def stop_all(self) -> bool:
        return False

    def __reduce__(self):  # Tune pickles its run config; the copy is inert
        return (_SweepStopper, (None,))


class _SweepCallback(tune.Callback):
    def __init__(self, loop: TrialSource | None) -> None:
        self.loop = loop

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self.loop is not None:
            self.loop.finish(trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        if self.loop is not None:
            self.loop.finish(trial.trial_id, _error_text(trial))

    def __reduce__(self):
        return (_SweepCallback, (None,))


def _error_text(trial: Any) -> str:
    """The traceback Tune wrote for a failed trial (locally, before any sync to storage)."""
    path = trial.error_file
    if path and Path(path).is_file():
        return Path(path).read_text()
    error = trial.get_error()
    return str(error) if error else "the trial failed without a traceback"


def run_sweep_trial(config: dict[str, Any], *, script: str, entry: str) -> None:
    """The trainable: Tune reuses a worker for the next trial (a fresh one costs seconds of
    imports), so the last trial's ``rescue.watch`` hooks are dropped first."""
    clear_report_sources()
    run_user_train(config, script=script, entry=entry)


def run_sweep(
    runner: RayRunner,
    loop: TrialSource,
    name: str,
    script: str,
    entry: str,
    n_trials: int,
    parallel: int,
) -> None:
    """Run up to ``n_trials`` trials of ``train(config)``, ``parallel`` at a time, each with
    the runner's per-trial resources."""
    function = tune.with_parameters(run_sweep_trial, script=script, entry=entry)
    tuner = tune.Tuner(
        tune.with_resources(function, runner.resources),
        param_space={},
        tune_config=tune.TuneConfig(
            search_alg=_LoopSearcher(loop),
            num_samples=n_trials,
            max_concurrent_trials=parallel,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=runner.storage_path,
            stop=_SweepStopper(loop),
            callbacks=[_SweepCallback(loop)],
            verbose=0,
            log_to_file=True,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    tuner.fit()
