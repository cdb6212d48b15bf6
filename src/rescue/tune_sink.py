"""Runs inside a Ray Tune trial: forwards ``rescue.report`` to ``ray.tune.report`` and serves
checkpoints. Imported only in Ray workers."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import tune

from rescue.entrypoint import load_entry
from rescue.reporting import Metrics, install_sink

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(state: Mapping[str, Any], folder: Path) -> None:
    import torch  # torch.save handles tensors, modules' state dicts and plain objects

    torch.save(dict(state), folder / CHECKPOINT_FILE)


def load_checkpoint(folder: str | Path) -> dict[str, Any]:
    import torch

    return torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=False)


class TuneSink:
    def __init__(self, resume_from: str | None = None) -> None:
        self.resume_from = resume_from

    def report(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None) -> None:
        if checkpoint is None:
            tune.report(dict(metrics))
            return
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(checkpoint, Path(folder))
            tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(folder))

    def get_checkpoint(self) -> dict[str, Any] | None:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                if (Path(folder) / CHECKPOINT_FILE).is_file():
                    return load_checkpoint(folder)
        if self.resume_from and "://" in self.resume_from:  # in a URI storage (s3://...)
            with tune.Checkpoint(self.resume_from).as_directory() as folder:
                return load_checkpoint(folder)
        if self.resume_from:
            return load_checkpoint(self.resume_from)
        return None


def run_user_train(
    config: dict[str, Any], *, script: str, entry: str, resume_from: str | None = None
) -> None:
    """The Ray Tune function trainable: the user's ``train(config)`` with reports routed to Tune."""
    install_sink(TuneSink(resume_from))
    load_entry(script, entry)(dict(config))
