"""The bundled examples' train(config) run in-process, their reports recorded: real training
runs, replayed through the detectors without Ray."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rescue.worker.entrypoint import load_entry
from rescue.worker.reporting import Metrics, install_sink

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class RecordingSink:
    def __init__(self) -> None:
        self.reports: list[Metrics] = []

    def report(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None) -> None:
        self.reports.append(dict(metrics))

    def get_checkpoint(self) -> dict[str, Any] | None:
        return None


def record_example(name: str, **overrides: Any) -> list[Metrics]:
    """Every report of one run of ``examples/NAME`` with its cfg.yaml params and ``overrides``."""
    folder = EXAMPLES / name
    params = yaml.safe_load((folder / "cfg.yaml").read_text())["params"]
    unknown = set(overrides) - set(params)
    if unknown:
        raise ValueError(f"{name}: no params {sorted(unknown)} in its cfg.yaml")
    sink = RecordingSink()
    previous = install_sink(sink)
    try:
        load_entry(folder / "train.py", "train")({**params, **overrides})
    finally:
        install_sink(previous)
    return sink.reports
