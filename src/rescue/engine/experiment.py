"""The Ray adapter of every run: one Ray Tune experiment, whose trials a loop feeds. A Tune
``Searcher`` asks the loop for each trial's config, a ``Stopper`` hands it every result and
stops the trial it diagnoses, and a ``Callback`` polls the loop for stalled trials between
results, passes on each checkpoint and tells it when a trial ended (or crashed).

The loop that feeds it is a :class:`~rescue.engine.lane.Lane`: a rescue's, one trial at a
time, each chosen once the one before has ended; a sweep's, K at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.search import Searcher

from rescue.detectors.findings import Finding
from rescue.detectors.judge import Judged, JudgeSpec
from rescue.engine.interrupt import Interrupt
from rescue.engine.tracebacks import user_traceback
from rescue.worker.command_line import CommandSpec
from rescue.worker.command_trial import PID_FILE, stop_process_group
from rescue.worker.judging import JUDGED_KEY, ending, judgments
from rescue.worker.report_batch import BATCH_KEY, COUNT_KEY, report_index, unpack
from rescue.worker.reporting import Metrics
from rescue.worker.run_settings import RUN_KEY, with_settings
from rescue.worker.trial import command_trial, train_trial

# Keys Ray Tune adds to every result; everything else in a result is the user's metrics.
TUNE_KEYS = frozenset(AUTO_RESULT_KEYS) | {
    "done",
    "trial_id",
    "experiment_tag",
    "should_checkpoint",
    "__duplicate__",
    "timesteps_this_iter",
    "episodes_this_iter",
    "checkpoint_dir_name",
    BATCH_KEY,
    COUNT_KEY,
    JUDGED_KEY,
}


def user_metrics(result: dict[str, Any]) -> Metrics:
    metrics: Metrics = {}
    for name, value in result.items():
        if name in TUNE_KEYS or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            metrics[name] = float(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            metrics[name] = [float(v) for v in value]
    return metrics


def reports_in(result: dict[str, Any]) -> list[Metrics]:
    """The reports a Ray Tune result carries: a batch from ``rescue.report``, or the one
    report of a script that calls ``ray.tune.report`` itself."""
    return unpack(result) if BATCH_KEY in result else [user_metrics(result)]


def last_report(result: dict[str, Any]) -> int:
    """The 0-based index, in its run, of a result's last report."""
    if COUNT_KEY in result:
        return report_index(result)
    return int(result.get("training_iteration", 1)) - 1


class Wait:
    """What :meth:`TrialSource.suggest` returns when the next trial is not chosen yet."""


WAIT = Wait()


class TrialSource(Protocol):
    """What the adapter needs of the loop that feeds it; ``key`` is Ray Tune's trial id."""

    def suggest(self, key: str) -> dict[str, Any] | Wait | None:
        """The next trial's params; :data:`WAIT` to be asked again; None when no trial is left."""
        ...

    def on_report(self, key: str, metrics: Metrics, judged: Judged | None = None) -> bool:
        """Every report of the trial, in order, with what its worker's judge said of it
        (None: the worker did not judge it); True stops it."""
        ...

    def take_ending(self, key: str, findings: list[Finding]) -> None:
        """The end-of-run checks of the trial's worker, sent as the trial ended by itself."""
        ...

    def replayed(self, key: str) -> list[Metrics]:
        """The reports the trial goes on from (an interrupted run's, replayed in the
        driver), for its worker's judge."""
        ...

    def should_stop(self, key: str) -> bool:
        """Polled several times a second, also while the trial sends nothing (stalls)."""
        ...

    def started(self, key: str) -> None:
        """The trial's worker started it (the stall clock starts here)."""
        ...

    def run_folder(self, key: str) -> Path:
        """Where the trial keeps its files; Tune's trial folder is named after it."""
        ...

    def resume_from(self, key: str) -> str | None:
        """The checkpoint the trial goes on from, if any."""
        ...

    def checkpointed(self, key: str, report: int, path: str) -> None:
        """The trial's ``report``-th report (0-based) saved a checkpoint at ``path``."""
        ...

    def finish(self, key: str, error: str | None = None) -> None:
        """The trial ended: by itself, stopped at the loop's request, or with ``error``."""
        ...


class _LoopSearcher(Searcher):
    """Configs come from the loop (and its Optuna study); Tune only schedules them, at most
    ``parallel`` at a time. The count is kept here rather than by Tune's ConcurrencyLimiter,
    which is never told of a trial Tune fails before it starts (a reused worker that could not
    be reset) and would then hold its slot for good; the callback below tells of every end."""

    def __init__(self, loop: TrialSource | None, parallel: int = 1) -> None:
        super().__init__()
        self.loop, self.parallel = loop, parallel
        self.running: set[str] = set()

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the loop has its own objective and space

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if len(self.running) >= self.parallel:
            return None  # Tune asks again at its next step
        params = self.loop.suggest(trial_id) if self.loop is not None else None
        if params is None:
            return Searcher.FINISHED
        if isinstance(params, Wait):
            return None
        self.running.add(trial_id)
        return with_settings(
            params,
            log_dir=str(self.loop.run_folder(trial_id)),  # type: ignore[union-attr]
            resume_from=self.loop.resume_from(trial_id),  # type: ignore[union-attr]
            replay=self.loop.replayed(trial_id) or None,  # type: ignore[union-attr]
        )

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass  # the callback below, which also sees the error, tells the loop

    def save(self, checkpoint_path: str) -> None:
        pass  # the loop keeps its own state; Tune's experiment restore is not used

    def restore(self, checkpoint_path: str) -> None:
        pass

    def ended(self, trial_id: str) -> None:
        self.running.discard(trial_id)

    def __reduce__(self):  # Tune pickles its tune config; the copy is inert
        return (_LoopSearcher, (None, self.parallel))


def trial_folder(trial: Trial) -> str:
    """A trial's folder is named after its run's (``run-007``)."""
    log_dir = (trial.config.get(RUN_KEY) or {}).get("log_dir")
    return Path(log_dir).name if log_dir else trial.trial_id


class _LoopStopper(tune.Stopper):
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
        reports = reports_in(result)
        judged = judgments(result, len(reports)) or [None] * len(reports)
        for metrics, said in zip(reports, judged, strict=True):  # all: made before the stop
            if self.loop.on_report(trial_id, metrics, said):
                self.stopped.add(trial_id)
        found = ending(result)
        if found is not None:
            self.loop.take_ending(trial_id, found)
        return trial_id in self.stopped

    def stop_all(self) -> bool:
        return self.interrupted

    @property
    def interrupted(self) -> bool:
        return self.interrupt is not None and self.interrupt.requested

    def __reduce__(self):  # Tune pickles its run config; the copy is inert
        return (_LoopStopper, (None,))


Kill = Callable[[Any], None]


def _kill_actor(actor: Any) -> None:
    ray.kill(actor, no_restart=True)


class _LoopCallback(tune.Callback):
    """Ends stalled trials, passes on checkpoints and tells the loop how each trial ended.

    A stalled trial cannot be stopped the way a diagnosed one is: its actor is blocked in
    ``train()`` waiting for a result that never comes, so it runs no ``stop`` or ``reset``,
    and Tune would keep it (and its resources) for up to ``TUNE_FORCE_TRIAL_CLEANUP_S``, or
    hand it, cached for reuse, to the next trial, whose reset then waits on the hang. So the
    callback kills the actor: Tune sees the actor die, records the trial as failed without
    reusing the actor and starts the next trial on a fresh one; the loop hears of it as a stop.

    Checkpoints are heard of from the result that carried them, as Tune names them
    (``checkpoint_dir_name``, set by the worker once the folder is in storage): no folder
    listing on the per-report path, and exact for any storage Tune accepts.
    """

    def __init__(
        self,
        loop: TrialSource | None,
        stopper: _LoopStopper | None = None,
        kill: Kill = _kill_actor,
        locate: Callable[[str], str] = str,
        searcher: _LoopSearcher | None = None,
    ) -> None:
        self.loop = loop
        self.stopper = stopper if stopper is not None else _LoopStopper(None)
        self.searcher = searcher
        self.kill, self.locate = kill, locate
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

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        name = result.get("checkpoint_dir_name")
        if self.loop is not None and name:
            path = self.locate(f"{trial.path}/{name}")
            self.loop.checkpointed(trial.trial_id, last_report(result), path)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._end(trial)
        if self.loop is not None and not self._cut_short(trial):
            self.loop.finish(trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._end(trial)
        if self.loop is None or self._cut_short(trial):
            return
        if trial.trial_id in self.stopper.killed:
            self.loop.finish(trial.trial_id)  # the death of the actor we killed: a stop
        else:
            self.loop.finish(trial.trial_id, _error_text(trial))

    def _end(self, trial: Any) -> None:
        self._ended.add(trial.trial_id)
        if self.searcher is not None:
            self.searcher.ended(trial.trial_id)
        _stop_leftover_process(trial)

    def _cut_short(self, trial: Any) -> bool:
        """Ended by Ctrl-C or SIGTERM, not by itself or by a diagnosis: the loop leaves it
        in flight, for ``rescue resume``."""
        key = trial.trial_id
        return self.stopper.interrupted and key not in self.stopper.stopped | self.stopper.killed

    def __reduce__(self):
        return (_LoopCallback, (None,))


def _stop_leftover_process(trial: Any) -> None:
    """A plain script's process group outlives a trial stopped or killed outright, which
    cannot clean up after it; the driver does (same host)."""
    log_dir = ((getattr(trial, "config", None) or {}).get(RUN_KEY) or {}).get("log_dir")
    pid_file = Path(log_dir) / PID_FILE if log_dir else None
    if pid_file is not None and pid_file.is_file():
        stop_process_group(int(pid_file.read_text()))


def _error_text(trial: Any) -> str:
    """The traceback Tune wrote for a failed trial (locally, before any sync to storage)."""
    path = trial.error_file
    if path and Path(path).is_file():
        return user_traceback(Path(path).read_text())
    error = trial.get_error()
    return user_traceback(str(error)) if error else "the trial failed without a traceback"


def run_experiment(
    loop: TrialSource,
    name: str,
    storage_path: str,
    resources: dict[str, float],
    script: str,
    entry: str,
    parallel: int = 1,
    command: CommandSpec | None = None,
    interrupt: Interrupt | None = None,
    locate: Callable[[str], str] = str,
    judge: JudgeSpec | None = None,
) -> None:
    """Run the trials of ``train(config)`` (or of ``command``, a plain script) that ``loop``
    suggests, until it says none is left, ``parallel`` at a time, each with ``resources``; a
    requested ``interrupt`` stops them all; ``locate`` turns a checkpoint's path into where it
    is; ``judge``: how each trial is judged in its worker (else the loop judges its reports)."""
    if command is not None:
        function = tune.with_parameters(command_trial, spec=command, judge=judge)
    else:
        function = tune.with_parameters(train_trial, script=script, entry=entry, judge=judge)
    stopper = _LoopStopper(loop, interrupt)
    searcher = _LoopSearcher(loop, parallel)
    tuner = tune.Tuner(
        tune.with_resources(function, resources),
        param_space={},
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,  # until the loop says no trial is left
            # Reusing a worker saves seconds of imports per trial; a plain script's trial may
            # still be reading its stopped process's output when Tune resets the worker, which
            # then fails the next trial, so those get a fresh worker each.
            reuse_actors=command is None,
            trial_dirname_creator=trial_folder,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            stop=stopper,
            # Tune's JSON and CSV loggers keep each trial's params.json and results; its
            # TensorBoard logger is left out (with TUNE_DISABLE_AUTO_CALLBACK_LOGGERS): the
            # results carry batches of reports, which it cannot plot, and tensorboardX
            # imports torch in the driver, a second of every start.
            callbacks=[
                _LoopCallback(loop, stopper, locate=locate, searcher=searcher),
                JsonLoggerCallback(),
                CSVLoggerCallback(),
            ],
            verbose=0,
            log_to_file=True,
            # A failed trial (also one killed at a stall) ends rather than being retried by
            # Tune, so the callback always hears of it.
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    tuner.fit()
