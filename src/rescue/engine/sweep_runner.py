"""The Ray adapter of a sweep: trials run K at a time as Ray Tune trials. A Tune ``Searcher``
asks the sweep loop for each trial's config, a ``Stopper`` hands it every result and stops the
trial it diagnoses, and a ``Callback`` polls the loop for stalled trials between results and
tells it when a trial ended (or crashed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.search import Searcher

from rescue.engine.interrupt import Interrupt
from rescue.engine.ray_runner import RayRunner, reports_in, stop_leftover
from rescue.engine.tracebacks import user_traceback
from rescue.worker.command_line import CommandSpec
from rescue.worker.command_trial import PID_FILE, run_command
from rescue.worker.reporting import Metrics, clear_report_sources
from rescue.worker.tune_sink import run_user_train


class TrialSource(Protocol):
    """What the adapter needs of :class:`~rescue.engine.sweep.SweepLoop`."""

    def suggest(self, key: str) -> dict[str, Any] | None: ...
    def on_report(self, key: str, metrics: Metrics) -> bool: ...
    def should_stop(self, key: str) -> bool:
        """Polled several times a second, also while the trial sends nothing (stalls)."""
        ...

    def started(self, key: str) -> None:
        """The trial's worker started it (the stall clock starts here)."""
        ...

    def run_folder(self, key: str) -> Path: ...

    def finish(self, key: str, error: str | None = None) -> None: ...


# A plain script's trial is told where to keep its output beside its params (and drops it
# before building the command line); the driver finds its process there after the trial.
LOG_DIR = "rescue_log_dir"


class _LoopSearcher(Searcher):
    """Configs come from the loop (and its Optuna study); Tune only schedules them."""

    def __init__(self, loop: TrialSource | None, with_log_dir: bool = False) -> None:
        super().__init__()
        self.loop = loop
        self.with_log_dir = with_log_dir

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the loop has its own objective and space

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        config = self.loop.suggest(trial_id) if self.loop is not None else None
        if config is None:
            return Searcher.FINISHED
        if self.with_log_dir:
            config = {**config, LOG_DIR: str(self.loop.run_folder(trial_id))}  # type: ignore[union-attr]
        return config

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass  # the callback below, which also sees the error, tells the loop

    def save(self, checkpoint_path: str) -> None:
        pass  # the study is the sweep's state; Tune's experiment restore is not used

    def restore(self, checkpoint_path: str) -> None:
        pass

    def __reduce__(self):  # Tune pickles its tune config; the copy is inert
        return (_LoopSearcher, (None, self.with_log_dir))


class _SweepStopper(tune.Stopper):
    def __init__(self, loop: TrialSource | None, interrupt: Interrupt | None = None) -> None:
        self.loop, self.interrupt = loop, interrupt
        self._last: dict[str, int] = {}
        self.stopped: set[str] = set()  # diagnosed at a report: Tune stops them
        self.killed: set[str] = set()  # stalled: the callback kills their actors

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if trial_id in self.killed:
            # A report that raced the kill: a STOP now would let Tune cache the dying actor
            # for the next trial; the kill ends this one through Tune's failure path.
            return False
        iteration = result.get("training_iteration", 0)
        if self.loop is None or iteration <= self._last.get(trial_id, 0):
            return trial_id in self.stopped  # Tune repeats the last result when a trial ends
        self._last[trial_id] = iteration
        for metrics in reports_in(result):  # all of them: the run made them before its stop
            if self.loop.on_report(trial_id, metrics):
                self.stopped.add(trial_id)
        return trial_id in self.stopped

    def stop_all(self) -> bool:
        return self.interrupted

    @property
    def interrupted(self) -> bool:
        return self.interrupt is not None and self.interrupt.requested

    def __reduce__(self):  # Tune pickles its run config; the copy is inert
        return (_SweepStopper, (None,))


Kill = Callable[[Any], None]


def _kill_actor(actor: Any) -> None:
    ray.kill(actor, no_restart=True)


class _SweepCallback(tune.Callback):
    """Ends stalled trials and tells the loop how each trial ended.

    A stalled trial cannot be stopped the way a diagnosed one is: its actor is blocked in
    ``train()`` waiting for a result that never comes, so it runs no ``stop`` or ``reset``,
    and Tune would keep it (and its resources) for up to ``TUNE_FORCE_TRIAL_CLEANUP_S``, or
    hand it, cached for reuse, to the next trial, whose reset then waits on the hang. So the
    callback kills the actor: Tune sees the actor die, records the trial as failed without
    reusing the actor and starts the next trial on a fresh one; the loop hears of it as a stop.
    """

    def __init__(
        self,
        loop: TrialSource | None,
        stopper: _SweepStopper | None = None,
        kill: Kill = _kill_actor,
    ) -> None:
        self.loop = loop
        self.stopper = stopper if stopper is not None else _SweepStopper(None)
        self.kill = kill
        self._ended: set[str] = set()

    def on_step_begin(self, iteration: int, trials: Iterable[Trial], **info) -> None:
        """Tune steps its loop at least ten times a second (each step waits at most 0.1 s for
        an event), also while every trial is silent, so a stall is caught here promptly."""
        if self.loop is None:
            return
        for trial in trials:
            key = trial.trial_id
            if trial.status == Trial.ERROR:
                if key not in self._ended:
                    # Tune fails a trial whose reused actor could not be reset without
                    # calling on_trial_error; the loop must still hear of it.
                    self.on_trial_error(iteration, trials, trial)
                continue
            if trial.status != Trial.RUNNING or key in self.stopper.stopped:
                continue  # a trial diagnosed at a report is being stopped by Tune already
            if key in self.stopper.killed or not self.loop.should_stop(key):
                continue
            # Tune keeps no public handle to a trial's actor; this is Trial's internal one.
            actor = trial.temporary_state.ray_actor
            if actor is not None:
                self.stopper.killed.add(key)
                self.kill(actor)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if self.loop is not None:
            self.loop.started(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._ended.add(trial.trial_id)
        _stop_leftover_process(trial)
        if self.loop is not None and not self._cut_short(trial):
            self.loop.finish(trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._ended.add(trial.trial_id)
        _stop_leftover_process(trial)
        if self.loop is None or self._cut_short(trial):
            return
        if trial.trial_id in self.stopper.killed:
            self.loop.finish(trial.trial_id)  # the death of the actor we killed: a stop
        else:
            self.loop.finish(trial.trial_id, _error_text(trial))

    def _cut_short(self, trial: Any) -> bool:
        """Ended by Ctrl-C or SIGTERM, not by itself or by a diagnosis: the loop leaves it
        in flight, for ``rescue resume``."""
        key = trial.trial_id
        return self.stopper.interrupted and key not in self.stopper.stopped | self.stopper.killed

    def __reduce__(self):
        return (_SweepCallback, (None,))


def _stop_leftover_process(trial: Any) -> None:
    """A plain script's process group outlives a trial stopped or killed outright."""
    log_dir = (getattr(trial, "config", None) or {}).get(LOG_DIR)
    if log_dir:
        stop_leftover(Path(log_dir) / PID_FILE)


def _error_text(trial: Any) -> str:
    """The traceback Tune wrote for a failed trial (locally, before any sync to storage)."""
    path = trial.error_file
    if path and Path(path).is_file():
        return user_traceback(Path(path).read_text())
    error = trial.get_error()
    return user_traceback(str(error)) if error else "the trial failed without a traceback"


def run_sweep_trial(config: dict[str, Any], *, script: str, entry: str) -> None:
    """The trainable: Tune reuses a worker for the next trial (a fresh one costs seconds of
    imports), so the last trial's ``rescue.watch`` hooks are dropped first."""
    clear_report_sources()
    run_user_train(config, script=script, entry=entry)


def run_sweep_command(config: dict[str, Any], *, spec: CommandSpec) -> None:
    """The trainable of a plain script: its params as flags, its output in its run folder."""
    params = dict(config)
    log_dir = params.pop(LOG_DIR)
    run_command(params, spec=spec, log_dir=log_dir)


def run_sweep(
    runner: RayRunner,
    loop: TrialSource,
    name: str,
    script: str,
    entry: str,
    n_trials: int,
    parallel: int,
    command: CommandSpec | None = None,
    interrupt: Interrupt | None = None,
) -> None:
    """Run up to ``n_trials`` trials of ``train(config)`` (or of ``command``, a plain
    script), ``parallel`` at a time, each with the runner's per-trial resources; a requested
    ``interrupt`` stops them all."""
    if command is not None:
        function = tune.with_parameters(run_sweep_command, spec=command)
    else:
        function = tune.with_parameters(run_sweep_trial, script=script, entry=entry)
    stopper = _SweepStopper(loop, interrupt)
    tuner = tune.Tuner(
        tune.with_resources(function, runner.resources),
        param_space={},
        tune_config=tune.TuneConfig(
            search_alg=_LoopSearcher(loop, with_log_dir=command is not None),
            num_samples=n_trials,
            max_concurrent_trials=parallel,
            # Reusing a worker saves seconds of imports per trial; a plain script's trial may
            # still be reading its stopped process's output when Tune resets the worker, which
            # then fails the next trial, so those get a fresh worker each.
            reuse_actors=command is None,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=runner.storage_path,
            stop=stopper,
            callbacks=[_SweepCallback(loop, stopper)],
            verbose=0,
            log_to_file=True,
            # A failed trial (also one killed at a stall) ends rather than being retried by
            # Tune, so the callback always hears of it.
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    tuner.fit()
