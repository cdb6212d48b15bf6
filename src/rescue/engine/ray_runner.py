"""The Ray adapter: runs one configuration as a Ray Tune function trial, hands every report to
a watcher as it arrives, and stops the trial when the watcher says so."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import ray
from ray import tune
from ray._raylet import PlacementGroupID
from ray.tune.result import AUTO_RESULT_KEYS
from ray.util.placement_group import (
    PlacementGroup,
    placement_group_table,
    remove_placement_group,
)

from rescue import layout
from rescue.config import RayOptions
from rescue.engine.address import check_address
from rescue.engine.interrupt import Interrupt, Stopped
from rescue.engine.tracebacks import user_traceback
from rescue.errors import RescueError
from rescue.worker.command_line import CommandSpec
from rescue.worker.command_trial import PID_FILE, run_command, stop_process_group
from rescue.worker.report_batch import BATCH_KEY, COUNT_KEY, report_index, unpack
from rescue.worker.reporting import Metrics
from rescue.worker.tune_sink import run_user_train

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


class RunWatcher(Protocol):
    def on_report(self, metrics: Metrics) -> bool:
        """Called in the driver for every report, in order; True stops the run."""

    def should_stop(self) -> bool:
        """Polled several times a second, also while no report arrives (stalls)."""

    def begin(self) -> None:
        """Called when the trial starts running (its worker placed and started)."""


@dataclass
class Execution:
    status: Literal["completed", "stopped", "crashed", "interrupted"]
    error: str | None = None
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    trial_dir: str | None = None


class _WatchStopper(tune.Stopper):
    """Hands Tune's results to the watcher. Tune pickles its run config for restoring an
    experiment; the pickled copy is inert, since the supervisor restores from its own state."""

    def __init__(self, watcher: RunWatcher | None, interrupt: Interrupt | None = None) -> None:
        self.watcher, self.interrupt = watcher, interrupt
        self.requested = False
        self._last_iteration = 0

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        iteration = result.get("training_iteration", 0)
        if self.watcher is None or iteration <= self._last_iteration:
            return self.requested  # Tune repeats the last result when a trial ends
        self._last_iteration = iteration
        for metrics in reports_in(result):  # all of them: the run made them before its stop
            if self.watcher.on_report(metrics):
                self.requested = True
        return self.requested

    def stop_all(self) -> bool:
        if self.interrupt is not None and self.interrupt.requested:
            return True  # Ctrl-C or SIGTERM: the run ends, recorded as interrupted
        if self.watcher is not None and not self.requested and self.watcher.should_stop():
            self.requested = True
        return self.requested

    def __reduce__(self):
        return (_WatchStopper, (None,))


# Called with (report, path): report is this trial's 0-based report index.
CheckpointListener = Callable[[int, str], None]


class _TrialEvents(tune.Callback):
    """Tells the watcher when its trial starts, so that waiting for a worker is not a stall,
    and ``on_checkpoint`` of each checkpoint a report carried, as Tune's result names it
    (``checkpoint_dir_name``, set by the worker once the folder is in storage): no folder
    listing on the per-report path, and exact for any storage Tune accepts."""

    def __init__(
        self,
        watcher: RunWatcher | None,
        on_checkpoint: CheckpointListener | None = None,
        locate: Callable[[str], str] = str,
    ) -> None:
        # Not `self.on_checkpoint`: that name is a Tune callback hook of its own.
        self.watcher, self.checkpointed, self.locate = watcher, on_checkpoint, locate

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if self.watcher is not None:
            self.watcher.begin()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        name = result.get("checkpoint_dir_name")
        if self.checkpointed is not None and name:
            self.checkpointed(last_report(result), self.locate(f"{trial.path}/{name}"))

    def __reduce__(self):
        return (_TrialEvents, (None,))


class RayRunner:
    """Starts (or attaches to) Ray and runs trials whose results land under ``storage_path``."""

    def __init__(
        self,
        storage_path: str | Path,
        address: str | None = None,
        cpus_per_run: float = 1,
        gpus_per_run: float = 0,
        interrupt: Interrupt | None = None,
    ) -> None:
        self.storage_path = (
            str(Path(storage_path).resolve())
            if "://" not in str(storage_path)
            else str(storage_path)
        )
        self.address = address
        self.resources = {"cpu": cpus_per_run, "gpu": gpus_per_run}
        self.interrupt = interrupt
        self._started_here = False

    @classmethod
    def for_output(
        cls,
        out: Path,
        address: str | None,
        options: RayOptions,
        interrupt: Interrupt | None = None,
    ) -> RayRunner:
        """Results under ``ray.storage_path`` or ``out/ray``; ``address`` (``--address``) wins
        over ``ray.address``."""
        return cls(
            storage_path=options.storage_path or out / layout.RAY,
            address=address or options.address,
            cpus_per_run=options.cpus_per_run,
            gpus_per_run=options.gpus_per_run,
            interrupt=interrupt,
        )

    def checkpoint_uri(self, path: str) -> str:
        """Where a checkpoint is, for a worker on any node: a path, or with a URI storage
        (whose checkpoints Ray names by their path without the scheme) a URI."""
        scheme, sep, _ = self.storage_path.partition("://")
        return f"{scheme}://{path}" if sep else path

    def start(self) -> None:
        # Runs keep the user's working directory, as when the script runs by hand.
        os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
        if ray.is_initialized():  # the caller's Ray (a test's, a notebook's): theirs to stop
            self._check_resources()
            return
        options: dict[str, Any] = dict(
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
        try:
            if self.address:
                options["runtime_env"] = {"env_vars": {"RAY_CHDIR_TO_TRIAL_DIR": "0"}}
                check_address(self.address)
                try:
                    ray.init(address=self.address, **options)
                except ConnectionError as exc:
                    raise RescueError(f"--address {self.address}: {exc}") from None
            else:
                # "local": a fresh instance, never one a `ray start` left running here.
                ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
        except SystemExit as exc:
            # ray.init's own SIGTERM handler exits; nothing has run yet: stop as at once.
            if exc.code != signal.SIGTERM:
                raise
            ray.shutdown()
            raise Stopped(signal.SIGTERM, hard=True) from None
        self._started_here = True
        try:
            self._check_resources()
        except RescueError:
            self.shutdown()
            raise

    def _check_resources(self) -> None:
        """A run asking for more than any node offers would wait forever without a word: on
        this machine's Ray that is bad input; on a cluster, which may scale up, it is said."""
        nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
        cpus = max((node.get("CPU", 0) for node in nodes), default=0)
        gpus = max((node.get("GPU", 0) for node in nodes), default=0)
        need_cpus, need_gpus = self.resources["cpu"], self.resources["gpu"]
        if need_cpus <= cpus and need_gpus <= gpus:
            return
        asked = f"ray.cpus_per_run {need_cpus:g} and ray.gpus_per_run {need_gpus:g}"
        largest = f"the largest node has {cpus:g} CPU(s) and {gpus:g} GPU(s)"
        if not self.address:
            raise RescueError(f"{asked}: this machine cannot run that ({largest})")
        print(
            f"rescue: waiting for a node with {asked} at {self.address} ({largest}); "
            "an autoscaling cluster may add one",
            file=sys.stderr,
        )

    def shutdown(self) -> None:
        if self._started_here and ray.is_initialized():
            ray.shutdown()
            self._started_here = False

    def run(
        self,
        name: str,
        script: str,
        entry: str,
        config: dict[str, Any],
        watcher: RunWatcher,
        resume_from: str | None = None,
        command: CommandSpec | None = None,
        log_dir: str | None = None,
        on_checkpoint: CheckpointListener | None = None,
    ) -> Execution:
        """One trial: ``train(config)`` from ``script``, or with ``command`` a plain script run
        as a process whose output is kept in ``log_dir``; ``on_checkpoint`` hears of each
        checkpoint as its report arrives."""
        if command is not None:
            if log_dir is None:
                raise ValueError("a command run needs a log_dir for its output")
            function = tune.with_parameters(run_command, spec=command, log_dir=log_dir)
        else:
            function = tune.with_parameters(
                run_user_train,
                script=script,
                entry=entry,
                resume_from=resume_from,
                log_dir=log_dir,
            )
        trainable = tune.with_resources(function, self.resources)
        stopper = _WatchStopper(watcher, self.interrupt)
        tuner = tune.Tuner(
            trainable,
            param_space=config,
            tune_config=tune.TuneConfig(num_samples=1),
            run_config=tune.RunConfig(
                name=name,
                storage_path=self.storage_path,
                stop=stopper,
                callbacks=[_TrialEvents(watcher, on_checkpoint, self.checkpoint_uri)],
                verbose=0,
                log_to_file=True,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        groups = _job_placement_groups()
        result = tuner.fit()[0]
        _remove_placement_groups(_job_placement_groups() - groups)
        if command is not None and log_dir is not None:
            stop_leftover(Path(log_dir) / PID_FILE)
        checkpoints = sorted(
            (last_report(metrics), self.checkpoint_uri(checkpoint.path))
            for checkpoint, metrics in (result.best_checkpoints or [])
        )
        if self.interrupt is not None and self.interrupt.requested:
            return Execution("interrupted", None, checkpoints, result.path)
        if result.error is not None:
            return Execution("crashed", _traceback(result.error), checkpoints, result.path)
        status = "stopped" if stopper.requested else "completed"
        return Execution(status, None, checkpoints, result.path)


def _job_placement_groups() -> set[str]:
    """This job's live placement groups (a group's id ends with its job's id)."""
    job = ray.get_runtime_context().get_job_id()
    return {
        group_id
        for group_id, group in placement_group_table().items()
        if group_id.endswith(job) and group["state"] != "REMOVED"
    }


def _remove_placement_groups(group_ids: set[str]) -> None:
    """Groups a run made and left behind when its trial ended: a Ray Train trainer's workers,
    whose controller died with the stopped trial before it could remove them (Ray's own
    cleaner needs the dashboard, which rescue's local Ray does without). Left alone, they
    hold the CPUs the next run waits for."""
    for group_id in group_ids:
        with contextlib.suppress(Exception):  # removed meanwhile
            remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(group_id)))


def stop_leftover(pid_file: Path) -> None:
    """A trial killed outright cannot clean up after its script; the driver does (same host)."""
    if pid_file.is_file():
        stop_process_group(int(pid_file.read_text()))


def _traceback(error: BaseException) -> str:
    cause = getattr(error, "cause", None) or error.__cause__
    text = str(error)
    if cause is not None and str(cause) not in text:
        text += f"\n{cause}"
    return user_traceback(text)
