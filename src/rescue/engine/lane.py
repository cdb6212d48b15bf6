"""The runs of a rescue or a sweep as the trials of one Ray Tune experiment
(:mod:`rescue.engine.experiment`), ``slots`` at a time: a rescue has one slot, whose next run
the supervisor chooses once the run before has ended; a sweep has K, each a thread of
:class:`~rescue.engine.sweep.SweepLoop` that starts a trial as soon as its last one ended.

A loop stays a loop: :meth:`Lane.run` hands a run over and waits for its end, while the
experiment runs in a thread of its own, started once. Between runs Tune keeps the worker
(reused for the next run, which then skips seconds of imports) and asks the lane for the next
trial, which it gets as soon as a loop has chosen it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import ray
from ray._raylet import PlacementGroupID
from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

from rescue.detectors.findings import Finding
from rescue.detectors.judge import Judged, JudgeSpec
from rescue.engine.experiment import WAIT, Wait, run_experiment
from rescue.engine.interrupt import Interrupt
from rescue.worker.command_line import CommandSpec
from rescue.worker.reporting import Metrics

# With no trial in flight Tune sleeps a second between asking for the next trial, so an idle
# lane waits here instead, for up to this long, waking for a stop several times a second.
# With a trial in flight it never waits: Tune's loop must go on taking that trial's results
# (its worker waits for each to be taken) and polling it for stalls.
IDLE_WAIT_SECONDS = 10.0
POLL_SECONDS = 0.1


class Monitor(Protocol):
    def on_report(self, metrics: Metrics, judged: Judged | None = None) -> bool:
        """Called in the driver for every report, in order, with what the run's worker
        judged of it (None: judge it here); True stops the run."""

    def take_ending(self, findings: list[Finding]) -> None:
        """The worker's end-of-run checks, sent as the run ended by itself."""

    def should_stop(self) -> bool:
        """Polled several times a second, also while no report arrives (stalls)."""

    def begin(self) -> None:
        """Called when the trial starts running (its worker placed and started)."""


# Called with (report, path): report is this trial's 0-based report index.
CheckpointListener = Callable[[int, str], None]


@dataclass
class Execution:
    status: Literal["completed", "stopped", "crashed", "interrupted"]
    error: str | None = None
    checkpoints: list[tuple[int, str]] = field(default_factory=list)


@dataclass(eq=False)  # one request is itself, never another equal to it (the queue)
class RunRequest:
    """One run handed to the lane, and what became of it."""

    params: dict[str, Any]
    monitor: Monitor
    log_dir: str  # the run's folder; its Tune trial folder takes its name
    resume_from: str | None = None
    on_checkpoint: CheckpointListener | None = None
    replay: list[Metrics] = field(default_factory=list)  # the reports it goes on from
    stop_requested: bool = False
    started: bool = False
    retried: bool = False
    groups: frozenset[str] = frozenset()  # the job's placement groups when it started
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    execution: Execution | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Lane:
    """Runs of one script, ``slots`` at a time, as trials of one Ray Tune experiment;
    :meth:`run` may be called from as many threads at once."""

    def __init__(
        self,
        name: str,
        storage_path: str,
        resources: dict[str, float],
        script: str,
        entry: str,
        command: CommandSpec | None = None,
        interrupt: Interrupt | None = None,
        locate: Callable[[str], str] = str,
        judge: JudgeSpec | None = None,
        slots: int = 1,
    ) -> None:
        if slots < 1:
            raise ValueError(f"a lane runs at least one run at a time: got slots={slots}")
        self.name, self.storage_path, self.resources = name, storage_path, resources
        self.slots = slots
        self.script, self.entry, self.command = script, entry, command
        self.interrupt, self.locate, self.judge = interrupt, locate, judge
        self._lock = threading.Lock()
        self._ready = threading.Event()  # a run is waiting to be suggested
        self._pending: deque[RunRequest] = deque()
        self._live: dict[str, RunRequest] = {}
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._experiments = 0

    # --- the loops' side -----------------------------------------------------------------
    @property
    def interrupted(self) -> bool:
        return self.interrupt is not None and self.interrupt.requested

    def run(self, request: RunRequest) -> Execution:
        """Start ``request`` as one of the experiment's next trials and wait until it has
        ended (at once, ``interrupted``, after Ctrl-C or SIGTERM)."""
        if self.interrupted:
            return Execution("interrupted")
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._start()
            thread = self._thread
        self.submit(request)
        assert thread is not None
        while not request.done.wait(0.1):
            if not thread.is_alive():  # the experiment ended under the run: a signal, an error
                break
        if self._failure is not None and not request.done.is_set():
            failure, self._failure = self._failure, None
            raise failure
        with self._lock:
            if request in self._pending:
                self._pending.remove(request)
        if self.interrupted:
            return Execution("interrupted", None, sorted(request.checkpoints))
        if request.execution is None:  # the experiment ended without telling of it
            return Execution("crashed", "the Ray Tune experiment ended during the run")
        return request.execution

    def submit(self, request: RunRequest) -> None:
        """Queue ``request`` for the experiment's next free slot, without waiting for it."""
        with self._lock:
            self._pending.append(request)
            self._ready.set()

    def close(self) -> None:
        """No more runs: the experiment ends (once its trial in flight has, if any)."""
        with self._lock:
            self._closed = True
            self._ready.set()
            idle = not self._live
        if self._thread is not None and idle:
            self._thread.join(timeout=60)

    def _start(self) -> None:
        self._experiments += 1
        name = self.name if self._experiments == 1 else f"{self.name}-{self._experiments}"
        self._closed, self._failure = False, None

        def experiment() -> None:
            try:
                run_experiment(
                    self,
                    name=name,
                    storage_path=self.storage_path,
                    resources=self.resources,
                    script=self.script,
                    entry=self.entry,
                    parallel=self.slots,
                    command=self.command,
                    interrupt=self.interrupt,
                    locate=self.locate,
                    judge=self.judge,
                )
            except BaseException as exc:  # raised again in the supervisor's thread
                self._failure = exc

        # A daemon: a second Ctrl-C ends rescue at once, without waiting for Tune.
        self._thread = threading.Thread(target=experiment, name="rescue-experiment", daemon=True)
        self._thread.start()

    # --- the experiment's side (TrialSource), called in Tune's thread ------------------------
    def suggest(self, key: str) -> dict[str, Any] | Wait | None:
        if len(self._live) >= self.slots or (self._live and not self._ready.is_set()):
            return WAIT
        deadline = time.monotonic() + IDLE_WAIT_SECONDS
        while not self._ready.wait(POLL_SECONDS):
            if self.interrupted or time.monotonic() > deadline:
                return WAIT
        with self._lock:
            if not self._pending:
                self._ready.clear()
                return None if self._closed else WAIT
            request = self._pending.popleft()
            if not self._pending and not self._closed:
                self._ready.clear()
            self._live[key] = request
            return request.params

    def on_report(self, key: str, metrics: Metrics, judged: Judged | None = None) -> bool:
        request = self._live.get(key)
        if request is None or not request.monitor.on_report(metrics, judged):
            return False
        request.stop_requested = True
        return True

    def take_ending(self, key: str, findings: list[Finding]) -> None:
        request = self._live.get(key)
        if request is not None:
            request.monitor.take_ending(findings)

    def replayed(self, key: str) -> list[Metrics]:
        return self._live[key].replay

    def should_stop(self, key: str) -> bool:
        request = self._live.get(key)
        if request is None or not request.monitor.should_stop():
            return False
        request.stop_requested = True
        return True

    def started(self, key: str) -> None:
        request = self._live.get(key)
        if request is not None:
            request.started = True
            if self.slots == 1:  # see finish
                request.groups = _job_placement_groups()
            request.monitor.begin()

    def run_folder(self, key: str) -> Path:
        return Path(self._live[key].log_dir)

    def resume_from(self, key: str) -> str | None:
        return self._live[key].resume_from

    def checkpointed(self, key: str, report: int, path: str) -> None:
        request = self._live.get(key)
        if request is not None:
            request.checkpoints.append((report, path))
            if request.on_checkpoint is not None:
                request.on_checkpoint(report, path)

    def finish(self, key: str, error: str | None = None) -> None:
        with self._lock:
            request = self._live.pop(key, None)
            if request is None:
                return
            if error is not None and not (request.started or request.retried or self._closed):
                # Tune failed it before it ran (a reused worker whose last trial did not end
                # in time for the reset): the same run goes again once, on a fresh worker.
                request.retried = True
                self._pending.appendleft(request)
                self._ready.set()
                return
        if request.started and self.slots == 1:
            # Only with one run at a time is every group made since the run started its own:
            # with several, another trial's group made meanwhile is Tune's, in use.
            _remove_placement_groups(_job_placement_groups() - request.groups)
        status = "crashed" if error else "stopped" if request.stop_requested else "completed"
        request.execution = Execution(status, error, sorted(request.checkpoints))
        request.done.set()


def _job_placement_groups() -> frozenset[str]:
    """This job's live placement groups (a group's id ends with its job's id)."""
    if not ray.is_initialized():  # a lane driven by hand, without Ray
        return frozenset()
    job = ray.get_runtime_context().get_job_id()
    return frozenset(
        group_id
        for group_id, group in placement_group_table().items()
        if group_id.endswith(job) and group["state"] != "REMOVED"
    )


def _remove_placement_groups(group_ids: frozenset[str]) -> None:
    """Groups a run made and left behind when its trial ended: a Ray Train trainer's workers,
    whose controller died with the stopped trial before it could remove them (Ray's own
    cleaner needs the dashboard, which rescue's local Ray does without). Left alone, they
    hold the CPUs the next run waits for. Tune's own group for the trial was made before the
    trial started, so it is not among them."""
    for group_id in group_ids:
        with contextlib.suppress(Exception):  # removed meanwhile
            remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(group_id)))
