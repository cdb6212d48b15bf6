"""Runs one case's ``train(config)`` in this process, each report written as a JSON line.

    python record_worker.py SCRIPT PARAMS_JSON OUT_JSONL

A crash writes its traceback to OUT_JSONL + ".error" and exits 1.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from collections.abc import Mapping
from typing import Any

try:  # run as a script: corpuskit is not importable; the previous release's layout too
    from rescue.worker.entrypoint import load_entry
    from rescue.worker.reporting import Metrics, install_sink
except ImportError:
    from rescue.entrypoint import load_entry
    from rescue.reporting import Metrics, install_sink


def _encode(value: float | list[float]) -> Any:
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value if math.isfinite(value) else str(value)


class FileSink:
    def __init__(self, path: str) -> None:
        self.file = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the run

    def report(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None) -> None:
        self.file.write(json.dumps({k: _encode(v) for k, v in metrics.items()}) + "\n")

    def get_checkpoint(self, weights_only: bool = True) -> dict[str, Any] | None:
        return None


def main() -> int:
    script, params, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    install_sink(FileSink(out))
    try:
        load_entry(script, "train")(params)
    except BaseException:
        with open(out + ".error", "w") as err:
            err.write(traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
