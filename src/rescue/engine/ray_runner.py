"""Ray for a rescue or a sweep: started here (or attached to a cluster), stopped when done, and
the lane whose runs are the trials of the script's Ray Tune experiment
(:mod:`rescue.engine.lane`): a rescue's, one run at a time, or a sweep's, K at a time."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import ray

from rescue import layout
from rescue.config import RayOptions
from rescue.detectors.judge import JudgeSpec
from rescue.engine.address import check_address
from rescue.engine.interrupt import Interrupt, Stopped
from rescue.engine.lane import Lane
from rescue.errors import RescueError
from rescue.worker.command_line import CommandSpec


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
        self._lane: Lane | None = None

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
        if self._lane is not None:
            self._lane.close()
            self._lane = None
        if self._started_here and ray.is_initialized():
            # Tune's experiment leaves Ray handles in cyclic garbage. Freed after Ray's
            # shutdown, by whichever thread collects next (the page's, drawing meanwhile),
            # each would abort the process ("the core worker has already been shutdown").
            gc.collect()
            ray.shutdown()
            self._started_here = False

    def lane(
        self,
        script: str,
        entry: str,
        command: CommandSpec | None = None,
        judge: JudgeSpec | None = None,
        name: str | None = None,
        slots: int = 1,
    ) -> Lane:
        """The lane of ``train(config)`` in ``script`` (or of ``command``, a plain script), its
        runs judged in their workers as ``judge`` says, ``slots`` at a time, as the Ray Tune
        experiment ``name`` (by default named after the time); the same lane while the job is
        the same, closed at :meth:`shutdown`."""
        lane = self._lane
        job = (script, entry, command, judge, slots)
        if lane is None or (lane.script, lane.entry, lane.command, lane.judge, lane.slots) != job:
            if lane is not None:
                lane.close()
            self._lane = Lane(
                name or f"rescue-{time.strftime('%Y%m%d-%H%M%S')}",
                self.storage_path,
                self.resources,
                script,
                entry,
                command,
                self.interrupt,
                self.checkpoint_uri,
                judge,
                slots,
            )
        return self._lane
