"""Starting Ray in the background.

``ray.init`` spends seconds waiting for Ray's own processes to come up, while the supervisor
has a second or two of its own work before the first run (importing Ray Tune, opening the
Optuna study). :class:`RayStart` runs ``ray.init`` on a thread of its own, begun as soon as the
command's input is known good and waited for when the first run is due, so the two overlap.
Off the main thread, ``ray.init`` leaves the signal handlers alone: a Ctrl-C or SIGTERM while
Ray starts reaches rescue's own handlers.

>>> starting = RayStart(address=None)  # nothing runs until begin()
>>> starting.begun
False
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rescue.engine.address import check_address
from rescue.errors import RescueError


def quiet_ray() -> None:
    """Ray's settings for a rescue, in the environment its processes inherit when it starts:
    no new-style Tune output, no auto loggers, no log dedup; its loggers quiet."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Runs keep the user's working directory, as when the script runs by hand.
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class RayStart:
    """``ray.init`` (a fresh local Ray, or ``address``'s cluster) on a thread: :meth:`begin`
    it, :meth:`wait` for it, :meth:`stop` it. A Ray this process already has (a test's, a
    notebook's) is used as it is and left running."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.started_here = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._env_before: dict[str, str | None] = {}  # what ray.init changed, as it was

    @property
    def begun(self) -> bool:
        return self._thread is not None

    def begin(self) -> RayStart:
        if self._thread is None:
            quiet_ray()
            self._thread = threading.Thread(target=self._init, name="rescue-ray", daemon=True)
            self._thread.start()
        return self

    def _init(self) -> None:
        try:
            import ray

            if not ray.is_initialized():
                options: dict = dict(
                    include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
                )
                before = dict(os.environ)
                if self.address:
                    options["runtime_env"] = {"env_vars": {"RAY_CHDIR_TO_TRIAL_DIR": "0"}}
                    check_address(self.address)
                    ray.init(address=self.address, **options)
                else:
                    # "local": a fresh instance, never one a `ray start` left running here.
                    ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
                self.started_here = True
                self._env_before = {
                    k: before.get(k)
                    for k in {*before, *os.environ}
                    if before.get(k) != os.environ.get(k)
                }
        except BaseException as exc:  # raised again in the thread that waits
            self._error = exc
        finally:
            self._ready.set()
        # Ray's processes get Linux's parent-death signal when the *thread* that started them
        # ends: this one stays until Ray is stopped.
        if self.started_here:
            self._stopped.wait()

    def wait(self) -> bool:
        """Wait for Ray; whether it was started here (and is this process's to stop). A
        cluster that cannot be reached is bad input."""
        self.begin()
        self._ready.wait()
        error, self._error = self._error, None
        if isinstance(error, ConnectionError):
            raise RescueError(f"--address {self.address}: {error}") from None
        if error is not None:
            raise error
        return self.started_here

    def stop(self) -> None:
        """Stop the Ray started here (once it is up); a no-op for one this process had, or
        when it is stopped already."""
        if self._thread is None or self._stopped.is_set():
            return
        self._ready.wait()
        if self.started_here:
            import ray

            ray.shutdown()
            # A local Ray sets RAY_AUTH_MODE=token (among others) in this process; left set, the
            # next ray.init here (say, to a cluster without token auth) cannot create actors.
            for key, value in self._env_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self._stopped.set()
        self._thread.join()


@contextmanager
def ray_begun(address: str | None) -> Iterator[RayStart]:
    """Ray's start begun for the body, which hands it to the runner; whatever the body does,
    the Ray started here is stopped when it ends (the runner has usually done so)."""
    starting = RayStart(address).begin()
    try:
        yield starting
    finally:
        starting.stop()
