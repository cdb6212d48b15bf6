"""Strict JSON for everything rescue writes (report.json, metrics.jsonl): JSON has no NaN or
infinity, so they are written as the strings "nan", "inf" and "-inf", and read back as floats
where numbers are expected (metric rows)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics.jsonl row with "nan", "inf", "-inf" read back as floats (also NaN literals,
    which earlier versions wrote, parse as floats already)."""

    def number(value: Any) -> Any:
        if isinstance(value, str) and value in NON_FINITE:
            return NON_FINITE[value]
        if isinstance(value, list):
            return [number(v) for v in value]
        return value

    return {k: number(v) for k, v in row.items()}


def line(row: dict[str, Any]) -> str:
    """One JSON line."""
    return json.dumps(encode(row), allow_nan=False) + "\n"


def metrics_line(step: int, metrics: dict[str, Any]) -> str:
    """One metrics.jsonl line: the report's index beside the metrics, never among them, so
    that a metric the user names ``step`` is kept as it was reported."""
    return line({"step": step, "metrics": metrics})


def metrics_row(row: Any) -> tuple[int | None, dict[str, Any]] | None:
    """A parsed metrics.jsonl line as (report index, metrics), or None if it is not a row.
    Also reads the flat rows earlier versions wrote (``{"step": i, "loss": ...}``)."""
    if not isinstance(row, dict):
        return None
    step = row.get("step")
    step = step if isinstance(step, int) and not isinstance(step, bool) else None
    if isinstance(row.get("metrics"), dict):
        return step, decode_metrics(row["metrics"])
    return step, decode_metrics({k: v for k, v in row.items() if k != "step"})


def write_file(path: Path, data: Any) -> None:
    """``data`` as indented strict JSON, replacing ``path`` whole: written to a temporary file
    of its own beside it, flushed to disk, then renamed, so that a reader (or a crash) never
    sees half a file and two writers never share a temporary name."""
    text = json.dumps(encode(data), indent=2, default=str, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
