"""Ctrl-C and SIGTERM: the run in flight is stopped and recorded as interrupted, never as
completed, and the output folder is left for ``rescue resume``. A second Ctrl-C forces the
stop at once (the folder stays resumable: report.json is written when every run starts).

Ray Tune's own SIGINT handler would end the trial as if it had finished, so it is switched
off (``TUNE_DISABLE_SIGINT_HANDLER``) while this one is installed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A signal that stops rescue at once: before a rescue's own handling is installed, or
    a second one. ``signum`` gives the exit code (128 + signum)."""

    def __init__(self, signum: int, hard: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        # Ray was cut off halfway through its start-up: its core worker may abort while the
        # interpreter shuts down, so the process ends without that shutdown.
        self.hard = hard


def stop_at_once(signum: int, frame: FrameType | None) -> None:
    """The handler while nothing is running yet (reading the cfg, opening the study)."""
    raise Stopped(signum)


class Interrupt:
    """Installed around a rescue or a sweep in the main thread (a no-op elsewhere)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by it."""
        return 128 + (self.signum or signal.SIGINT)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def __enter__(self) -> Interrupt:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def reinstall(self) -> None:
        """Take the signals back: Ray's start-up sets handlers of its own (SIGTERM exits)."""
        if self._previous:
            for sig in SIGNALS:
                signal.signal(sig, self._handle)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise Stopped(signum)  # the second signal: stop now
        self.signum = signum
        self.event.set()
        print(
            f"rescue: {signal.Signals(signum).name}: stopping the run in flight "
            "(press Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )
