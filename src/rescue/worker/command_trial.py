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
from typing import IO, Any

from ray import tune

from rescue import layout
from rescue.worker.command_line import CommandSpec, build_argv
from rescue.worker.judging import BatchJudge
from rescue.worker.output_metrics import OutputParser
from rescue.worker.report_batch import Batcher
from rescue.worker.tensorboard_reader import TensorBoardReader

PID_FILE = layout.PID
STDERR_TAIL = 20
BOARD_POLL_SECONDS = 0.5  # how often the event files are read while the script runs
DRAIN_SECONDS = 2.0  # reading on after the script exited, for what its children still print


class CommandFailed(RuntimeError):
    pass


def run_command(
    config: dict[str, Any], *, spec: CommandSpec, log_dir: str, judge: BatchJudge | None = None
) -> None:
    """The Ray Tune function trainable of a plain script; ``judge``: the run's judge, whose
    verdict stops the script."""
    argv = build_argv(spec.command, config, spec.template)
    parser = OutputParser(spec.patterns)
    board = _board(spec, config)
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines arrive as they are printed
    with (
        open(folder / layout.STDOUT, "w", buffering=1) as out,
        open(folder / layout.STDERR, "w", buffering=1) as err,
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
            told: set[str] = set()
            batcher = Batcher(lambda result, _: tune.report(result), judge=judge)
            polled = 0.0
            for line in _lines_until_exit(process, err):
                if batcher.stopped:
                    break  # its judge ended the run: the script is stopped below
                if board is not None and time.monotonic() - polled > BOARD_POLL_SECONDS:
                    polled = time.monotonic()
                    for metrics in board.poll():
                        batcher.add(metrics)  # after a verdict: SystemExit, as a Tune stop
                if not line:
                    batcher.flush()
                    continue
                out.write(line)
                metrics = parser.parse(line)
                for name in parser.unreadable.keys() - told:
                    told.add(name)
                    err.write(
                        f"rescue: {name} = {parser.unreadable[name]} does not fit a float: "
                        "left out of the reports\n"
                    )
                if metrics:
                    batcher.add(metrics)
            if batcher.stopped:
                return
            if board is not None:
                for metrics in board.poll() + board.finish():
                    batcher.add(metrics)
                _tell_unseen(board, err)
            code = process.wait()
            batcher.flush(finished=code == 0)  # a clean exit: with the end-of-run checks
        finally:
            stop_process_group(process.pid)
            # Gone: the driver must not signal this pid later, it may be reused.
            (folder / PID_FILE).unlink(missing_ok=True)
    if code != 0:
        with open(folder / layout.STDERR) as err:
            tail = "".join(deque(err, maxlen=STDERR_TAIL)).rstrip()
        raise CommandFailed(
            f"{' '.join(argv)} exited with code {code}; last lines of its stderr:\n{tail}"
        )


def _board(spec: CommandSpec, config: dict[str, Any]) -> TensorBoardReader | None:
    if spec.tensorboard is None:
        return None
    logdir = spec.tensorboard["logdir"].format_map({k: str(v) for k, v in config.items()})
    return TensorBoardReader(logdir, spec.tensorboard["tags"], since=time.time())


def _tell_unseen(board: TensorBoardReader, err: IO[str]) -> None:
    """Name the tags that never appeared, for the run's stderr.log (and the supervisor)."""
    unseen = sorted(set(board.metric_of) - board.seen)
    if unseen:
        files = len(board.files)
        err.write(
            f"rescue: command.tensorboard: tag(s) {', '.join(unseen)} never appeared in the "
            f"{files} event file(s) written under {board.logdir.resolve()} during the run\n"
        )


def _lines_until_exit(process: subprocess.Popen[str], err: IO[str]) -> Iterator[str]:
    """The script's output lines, ending when the script exits, even if a child it left
    behind (a data-loader worker, a logger) still holds the pipe open: that child is stopped
    with the group, which closes the pipe. A child that left the group (its own session)
    cannot be stopped with it: what it prints within ``DRAIN_SECONDS`` is read, then it is
    named in ``stderr.log`` and left running. An empty string says nothing came for 0.2 s."""
    lines: queue.Queue[str | None] = queue.Queue()
    assert process.stdout is not None
    pipe = os.fstat(process.stdout.fileno()).st_ino

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = None
    while True:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if deadline is None and process.poll() is not None:
                stop_process_group(process.pid)  # the pipe closes; the reader drains and ends
                deadline = time.monotonic() + DRAIN_SECONDS
            elif deadline is not None and time.monotonic() > deadline:
                holders = ", ".join(_describe(pid) for pid in _pipe_holders(pipe))
                err.write(
                    f"rescue: the script exited, but {holders or 'a process it started'} "
                    "outside its process group still holds its output open; rescue stopped "
                    "reading it and left that process running\n"
                )
                return
            yield ""  # quiet for a moment: the caller may send what it holds
            continue
        if line is None:
            return
        yield line


def _pipe_holders(inode: int) -> list[int]:
    """The processes other than this one with the pipe ``inode`` open (Linux /proc)."""
    target, holders = f"pipe:[{inode}]", []
    for entry in Path("/proc").glob("[0-9]*"):
        if int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                holders.append(int(entry.name))
    return holders


def _describe(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmdline = ""
    return f"pid {pid} ({cmdline.strip()[:80]})" if cmdline.strip() else f"pid {pid}"


def stop_process_group(pid: int) -> None:
    """SIGTERM to the script's process group and to every process it started, SIGKILL to what
    is left after 2 s. The descendants are found first: a launcher such as torchrun starts its
    workers in sessions of their own, out of reach of the group's signal, and they would be
    orphaned once it is gone."""
    tree = _descendants(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        for child in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, sig)
        if sig == signal.SIGTERM:
            _wait_gone(pid, tree, seconds=2.0)


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` in the process tree (Linux /proc; none elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait_gone(pid: int, tree: list[int], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive_group(pid) and not any(_alive(child) for child in tree):
            return
        time.sleep(0.05)


def _alive_group(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent (which never signals back as gone)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name, from the state on (Linux); empty
    when the process is gone. The name may hold spaces and parentheses: it ends at the last
    ')'."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()
    except (OSError, ValueError):  # gone, or not Linux's format
        return []


def _die_with_parent() -> None:
    """If the Ray worker is killed outright, the script gets SIGKILL too (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
