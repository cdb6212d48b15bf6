"""This machine's Ray, started in a thread of its own so that it comes up (seconds: its
processes start and register) while the rest of rescue's start goes on: importing Ray Tune and
Optuna, opening the study.

The thread lives until Ray is shut down. Ray starts its processes with ``PR_SET_PDEATHSIG``,
which Linux ties to the thread that started them, not to the process: had the thread ended,
they would have been killed with it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import ray


def keep_working_directory() -> None:
    """Runs keep the user's working directory, as when the script runs by hand (set before
    Ray starts: its workers inherit it)."""
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")


def quiet_options() -> dict[str, Any]:
    """What every start of Ray here asks for: no dashboard, Ray's own logs kept to its files."""
    return dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)


def local_options() -> dict[str, Any]:
    """A fresh instance on this machine ("local": never one a `ray start` left running here),
    with the cores there are."""
    return dict(address="local", num_cpus=os.cpu_count() or 1, **quiet_options())


class LocalRay:
    """This machine's Ray, starting in the background from construction: :meth:`wait` until
    it is up; :meth:`stop` shuts it down.

    >>> LocalRay  # doctest: +ELLIPSIS
    <class '...LocalRay'>
    """

    def __init__(self) -> None:
        keep_working_directory()
        self.error: BaseException | None = None
        self._up = threading.Event()
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._own, name="rescue-ray", daemon=True)
        self._thread.start()

    def _own(self) -> None:
        try:
            ray.init(**local_options())
        except BaseException as exc:  # raised again by wait(), in the caller's thread
            self.error = exc
        finally:
            self._up.set()
        self._released.wait()  # see the module's docstring

    def wait(self) -> None:
        """Until Ray is up; its start's error, if any, raised here."""
        while not self._up.wait(0.1):  # with a timeout: a signal is handled meanwhile
            pass
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Shut Ray down (once its start has ended, however it ended), and end the thread."""
        while not self._up.wait(0.1):
            pass
        if ray.is_initialized():
            ray.shutdown()
        self._released.set()
