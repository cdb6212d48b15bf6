"""Runs inside a Ray Tune trial: forwards ``rescue.report`` to ``ray.tune.report``, in batches
(:mod:`rescue.worker.report_batch`), and serves checkpoints. Imported only in Ray workers."""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from ray import cloudpickle, tune

from rescue import layout
from rescue.worker.entrypoint import load_entry
from rescue.worker.judging import BatchJudge
from rescue.worker.report_batch import Batcher
from rescue.worker.reporting import Metrics, install_sink

STDERR_TAIL = 20


def save_checkpoint(state: Mapping[str, Any], folder: Path) -> None:
    import torch  # torch.save handles tensors, modules' state dicts and plain objects

    torch.save(dict(state), folder / layout.CHECKPOINT)


def load_checkpoint(folder: str | Path, weights_only: bool = True) -> dict[str, Any]:
    import torch

    return torch.load(Path(folder) / layout.CHECKPOINT, weights_only=weights_only)


def tune_report(result: dict[str, Any], checkpoint: Mapping[str, Any] | None) -> None:
    if checkpoint is None:
        tune.report(result)
        return
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(checkpoint, Path(folder))
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


class TuneSink:
    def __init__(self, resume_from: str | None = None, judge: BatchJudge | None = None) -> None:
        self.resume_from = resume_from
        self.batcher = Batcher(tune_report, timer=True, judge=judge)

    def report(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None) -> None:
        self.batcher.add(metrics, checkpoint)

    def get_checkpoint(self, weights_only: bool = True) -> dict[str, Any] | None:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                if (Path(folder) / layout.CHECKPOINT).is_file():
                    return load_checkpoint(folder, weights_only)
        if self.resume_from and "://" in self.resume_from:  # in a URI storage (s3://...)
            with tune.Checkpoint(self.resume_from).as_directory() as folder:
                return load_checkpoint(folder, weights_only)
        if self.resume_from:
            return load_checkpoint(self.resume_from, weights_only)
        return None


def run_user_train(
    config: dict[str, Any],
    *,
    script: str,
    entry: str,
    resume_from: str | None = None,
    log_dir: str | None = None,
    fresh: bool = False,
    judge: BatchJudge | None = None,
) -> None:
    """The Ray Tune function trainable: the user's ``train(config)`` with reports routed to
    Tune. What it prints is kept in ``log_dir`` (stdout.log, stderr.log) as for a plain
    script, and a ``sys.exit`` inside it (an argparse error, say) is a crash that says so, with
    the last lines it wrote to stderr. ``fresh``: import the script again, also in a worker
    that imported it for an earlier trial. ``judge``: the run's judge; its verdict ends the
    run as a stop from Ray Tune does (a ``SystemExit`` at the next report)."""
    sink = TuneSink(resume_from, judge)
    install_sink(sink)
    with captured_output(log_dir) as tail:
        try:
            train = load_entry(script, entry, fresh=fresh)
            # The script is imported under a name no other process knows: what it hands to Ray
            # (a Ray Train loop, a task) travels by value, as from a script run as __main__.
            cloudpickle.register_pickle_by_value(sys.modules[train.__module__])
            train(dict(config))
        except SystemExit as exc:
            _send_rest(sink.batcher)
            if exc.code in (None, 0):
                raise  # also how Ray Tune ends the training thread of a stopped trial
            lines = "".join(tail).rstrip()
            raise RuntimeError(
                f"{Path(script).name} exited (sys.exit({exc.code!r})) inside {entry}(); "
                f"last lines of its stderr:\n{lines}"
            ) from None
        except Exception:
            _send_rest(sink.batcher)  # the reports before a crash are part of its story
            raise
        sink.batcher.close(finished=True)


def _send_rest(batcher: Batcher) -> None:
    """The pending reports of a run that raised; the run's own error is what matters."""
    with contextlib.suppress(Exception):
        batcher.close()


class _Tee(io.TextIOBase):
    """Writes to the worker's own stream and to a log file; keeps the last lines."""

    def __init__(self, stream: TextIO, file: TextIO, tail: deque[str] | None) -> None:
        self.stream, self.file, self.tail = stream, file, tail

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.file.write(text)
        if self.tail is not None:
            self.tail.extend(text.splitlines(keepends=True))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()


@contextlib.contextmanager
def captured_output(log_dir: str | None) -> Iterator[deque[str]]:
    """stdout and stderr go on to the worker's streams and into ``log_dir``'s logs too."""
    tail: deque[str] = deque(maxlen=STDERR_TAIL)
    if log_dir is None:
        yield tail
        return
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with (
        open(folder / layout.STDOUT, "a", buffering=1) as out,
        open(folder / layout.STDERR, "a", buffering=1) as err,
        contextlib.redirect_stdout(_Tee(sys.stdout, out, None)),
        contextlib.redirect_stderr(_Tee(sys.stderr, err, tail)),
    ):
        yield tail
