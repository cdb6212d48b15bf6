"""Scalars from the TensorBoard event files an unmodified script writes (``SummaryWriter``),
read as they are written, with TensorBoard's own event reader.

``command.tensorboard: {logdir: runs/{exp_name}, tags: {loss: train/loss}}`` maps each metric to
the tag the script logs it under. The run's event files are those under ``logdir`` (searched
recursively; ``{param}`` stands for the run's value of a param) written since the run started.
Scalars of one step make one report, with the script's step as the metric ``step``; a step
whose other tags have not come yet is sent when the next step starts or the files go quiet.

>>> import tempfile, time
>>> from torch.utils.tensorboard import SummaryWriter
>>> folder = tempfile.mkdtemp()
>>> reader = TensorBoardReader(folder, {"loss": "train/loss"}, since=time.time() - 1)
>>> with SummaryWriter(folder) as writer:
...     for step in (0, 10, 20):
...         writer.add_scalar("train/loss", 1.0 / (step + 1), step)
>>> [(r["step"], round(r["loss"], 4)) for r in reader.poll() + reader.finish()]
[(0.0, 1.0), (10.0, 0.0909), (20.0, 0.0476)]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EVENT_FILE = "events.out.tfevents."
INSTALL = (
    "command.tensorboard reads event files with the tensorboard package: "
    "pip install 'rescue[tensorboard]'"
)


def check_installed() -> None:
    """Raise ImportError with the install line when tensorboard's event reader is missing."""
    try:
        from tensorboard.backend.event_processing import event_file_loader  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL) from exc


class TensorBoardReader:
    """Incremental reader of one run's scalars. ``since``: the run's start (``time.time()``);
    event files last written before it belong to earlier runs."""

    def __init__(self, logdir: str | Path, tags: Mapping[str, str], since: float) -> None:
        check_installed()
        self.logdir = Path(logdir)
        self.metric_of = {tag: metric for metric, tag in tags.items()}
        self.since = since - 1.0  # file times have a coarse grain on some file systems
        self.seen: set[str] = set()  # tags read at least once
        self._loaders: dict[Path, Any] = {}
        self._step: int | None = None
        self._row: dict[str, float] = {}

    @property
    def files(self) -> list[Path]:
        return list(self._loaders)

    def poll(self) -> list[dict[str, float]]:
        """Reports completed since the last poll: every step before the newest one read, and
        that one too when nothing new came since the last poll (the files went quiet)."""
        reports: list[dict[str, float]] = []
        for path in self._new_files():
            from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

            self._loaders[path] = EventFileLoader(str(path))
        read = 0
        for loader in self._loaders.values():
            for event in loader.Load():  # from where the last Load stopped; a half-written
                read += self._take(event, reports)  # record at the end is read once whole
        return reports if read else reports + self.finish()

    def finish(self) -> list[dict[str, float]]:
        """The last step's report (the script ended, or its files went quiet)."""
        if self._step is None or not self._row:
            return []
        report = {**self._row, "step": float(self._step)}
        self._row = {}
        return [report]

    def _new_files(self) -> list[Path]:
        if not self.logdir.is_dir():
            return []
        found = []
        for root, _, names in os.walk(self.logdir):
            for name in names:
                path = Path(root) / name
                if EVENT_FILE in name and path not in self._loaders:
                    try:
                        if path.stat().st_mtime >= self.since:
                            found.append(path)
                    except OSError:
                        continue
        return sorted(found)

    def _take(self, event: Any, reports: list[dict[str, float]]) -> int:
        """Add ``event``'s scalars of the watched tags; how many there were."""
        taken = 0
        if not event.HasField("summary"):
            return taken
        for value in event.summary.value:
            metric = self.metric_of.get(value.tag)
            if metric is None:
                continue
            number = _scalar(value)
            if number is None:
                continue
            self.seen.add(value.tag)
            if self._step is not None and event.step != self._step:
                reports.extend(self.finish())
            self._step = event.step
            self._row[metric] = number
            taken += 1
        return taken


def _scalar(value: Any) -> float | None:
    """A summary value's number: a scalar tensor (what EventFileLoader migrates
    ``add_scalar`` to) or a legacy ``simple_value``."""
    if value.HasField("tensor"):
        from tensorboard.util import tensor_util

        array = tensor_util.make_ndarray(value.tensor)
        if array.size != 1:
            return None
        number = float(array.reshape(-1)[0])
    elif value.HasField("simple_value"):
        number = float(value.simple_value)
    else:
        return None
    return number  # NaN and inf too: the detectors are there for them
