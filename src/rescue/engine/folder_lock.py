"""One writer per output folder.

Two rescues (or sweeps) on one ``--out`` would interleave its ``metrics.jsonl`` files and the
last writer would win ``report.json``. The first process to start holds an advisory lock on
``OUTDIR/.rescue.lock`` for as long as it runs; the operating system drops it when the
process ends, however it ends, so a killed rescue never leaves a stale lock behind. (``flock``
locks are per machine: on a shared file system two machines are not kept apart.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from rescue.errors import RescueError

LOCK_FILE = ".rescue.lock"
_held: list[IO[str]] = []  # kept open for the life of the process


def lock_folder(out: Path) -> None:
    """Hold ``out``'s lock until this process ends; :class:`RescueError` if another holds it."""
    handle = (out / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RescueError(
            f"{out}: in use by {holder}; wait for it to end (or stop it), then "
            f"`rescue resume {out}` goes on from where it stopped"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"rescue pid {os.getpid()}\n")
    handle.flush()
    _held.append(handle)


def release_folders() -> None:
    """Let go of every folder this process holds (its command is done)."""
    while _held:
        _held.pop().close()  # closing the file drops its lock
