"""Runs inside a Ray Tune trial: a plain training script as a process, its output read line by
line into reports. Its stdout and stderr are kept in the run's folder; stopping the trial stops
the script's whole process tree; a non-zero exit raises with the tail of stderr (a crash).
Imported only in Ray workers."""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ray import tune

from rescue.command_line import CommandSpec, build_argv
from rescue.output_metrics import OutputParser

PID_FILE = "command.pid"
STDERR_TAIL = 20


class CommandFailed(RuntimeError):
    pass


def run_command(config: dict[str, Any], *, spec: CommandSpec, log_dir: str) -> None:
    """The Ray Tune function trainable of a plain script."""
    argv = build_argv(spec.command, config, spec.template)
    parser = OutputParser(spec.patterns)
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines arrive as they are printed
    with (
        open(folder / "stdout.log", "w", buffering=1) as out,
        open(folder / "stderr.log", "w", buffering=1) as err,
    ):
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,  # its own process group: stopped as a whole
            preexec_fn=_die_with_parent,
        )
        (folder / PID_FILE).write_text(str(process.pid))
        try:
            assert process.stdout is not None
            for line in _lines_until_exit(process):
                out.write(line)
                metrics = parser.parse(line)
                if metrics:
                    tune.report(metrics)
            code = process.wait()
        finally:
            stop_process_group(process.pid)
            # Gone: the driver must not signal this pid later, it may be reused.
            (folder / PID_FILE).unlink(missing_ok=True)
    if code != 0:
        with open(folder / "stderr.log") as err:
            tail = "".join(deque(err, maxlen=STDERR_TAIL)).rstrip()
        raise CommandFailed(
            f"{' '.join(argv)} exited with code {code}; last lines of its stderr:\n{tail}"
        )


def _lines_until_exit(process: subprocess.Popen[str]) -> Iterator[str]:
    """The script's output lines, ending when the script exits, even if a child it left
    behind (a data-loader worker, a logger) still holds the pipe open: that child is stopped
    with the group, which closes the pipe."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if process.poll() is not None:
                stop_process_group(process.pid)  # the pipe closes; the reader drains and ends
            continue
        if line is None:
            return
        yield line


def stop_process_group(pid: int) -> None:
    """SIGTERM to the script's process group, SIGKILL to what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        if sig == signal.SIGTERM:
            _wait_gone(pid, seconds=2.0)


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)


def _die_with_parent() -> None:
    """If the Ray worker is killed outright, the script gets SIGKILL too (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
