"""Killing a real supervisor as node loss would: SIGKILL to it and to every process it started,
Ray's workers included (they run in sessions of their own)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """Every process started (transitively) by ``pid``."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited, only its parent has not reaped it yet


def kill_all(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGKILL ``proc`` (started with ``start_new_session=True``) and all it started; returns
    once none of them is alive, or fails."""
    started_by_it = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in started_by_it:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in started_by_it) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in started_by_it), "a killed process is still alive"
