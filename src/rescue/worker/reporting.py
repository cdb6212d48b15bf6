"""The user-facing reporting calls: ``rescue.report`` and ``rescue.get_checkpoint``.

Reports go to a *sink*. Outside a supervised run the sink prints one compact line per
report, so the same script runs by hand; inside a supervised run the Ray adapter installs a
sink that forwards each report to Ray Tune as it is made.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol

Metrics = dict[str, float | list[float]]


class ReportSink(Protocol):
    def report(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None) -> None: ...

    def get_checkpoint(self, weights_only: bool = True) -> dict[str, Any] | None: ...


class PrintSink:
    """Prints ``step 12 | loss 0.2847 | grad_norm 1.2`` for each report."""

    def __init__(self, stream=None) -> None:
        self.stream = stream
        self.step = 0

    def report(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None) -> None:
        parts = [f"step {self.step}"]
        for name, value in metrics.items():
            if isinstance(value, list):
                parts.append(f"{name} [{', '.join(f'{v:.3g}' for v in value)}]")
            else:
                parts.append(f"{name} {value:.6g}")
        print(" | ".join(parts), file=self.stream or sys.stdout, flush=True)
        self.step += 1

    def get_checkpoint(self, weights_only: bool = True) -> dict[str, Any] | None:
        return None


_sink: ReportSink | None = None  # chosen at the first report: see _current_sink
_sources: list[Callable[[], Metrics]] = []  # e.g. rescue.watch: metrics added to every report


def install_sink(sink: ReportSink | None) -> ReportSink | None:
    """Route every later ``report`` to ``sink``; returns the sink it replaced (None: the one
    chosen at the first report)."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def _current_sink() -> ReportSink:
    """The installed sink; with none installed, a Ray Train worker's (its reports go through
    ``ray.train.report``, so a rescue supervising the trainer sees rank 0's) or else the
    printing one. Decided once per process, at its first report."""
    global _sink
    if _sink is None:
        if "ray.train" in sys.modules:  # never imports Ray into a script that does not use it
            from rescue.integrations.ray_train import worker_sink

            _sink = worker_sink()
        if _sink is None:
            _sink = PrintSink()
    return _sink


def add_report_source(source: Callable[[], Metrics]) -> None:
    """``source()`` is called on every report; its metrics travel with the user's."""
    _sources.append(source)


def remove_report_source(source: Callable[[], Metrics]) -> None:
    if source in _sources:
        _sources.remove(source)


def clear_report_sources() -> None:
    """Forget every source: a worker reused for the next trial starts without the last one's."""
    _sources.clear()


def normalize_metrics(metrics: Mapping[str, Any]) -> Metrics:
    """Scalars become floats and 1-D sequences lists of floats; anything else is an error."""
    out: Metrics = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"metric names must be strings, got {name!r}")
        out[name] = _as_metric_value(name, value)
    return out


def _as_metric_value(name: str, value: Any) -> float | list[float]:
    if hasattr(value, "tolist") and not isinstance(value, numbers.Number):
        value = value.tolist()  # torch tensors and numpy arrays
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        try:
            values = [float(v) for v in value]
        except (TypeError, ValueError):
            raise TypeError(f"metric {name!r} must be a scalar or a 1-D list of floats") from None
        return values
    raise TypeError(
        f"metric {name!r} must be a scalar or a 1-D list of floats, got {type(value).__name__}"
    )


def report(
    metrics: Mapping[str, Any] | None = None,
    /,
    *,
    checkpoint: Mapping[str, Any] | None = None,
    **kw_metrics: Any,
) -> None:
    """Report one step's metrics (and optionally a checkpoint dict) to the supervisor.

    >>> import rescue
    >>> rescue.report(loss=0.25, grad_norm=1.5)
    step 0 | loss 0.25 | grad_norm 1.5
    """
    added = {k: v for source in _sources for k, v in source().items()}
    merged = normalize_metrics({**added, **(metrics or {}), **kw_metrics})  # the user's win
    _current_sink().report(merged, checkpoint)


def get_checkpoint(weights_only: bool = True) -> dict[str, Any] | None:
    """The checkpoint dict to resume from, or None for a fresh start.

    It is loaded with ``torch.load(weights_only=True)``: tensors, state dicts, numbers,
    strings and plain containers, never code. A checkpoint holding other pickled objects needs
    ``weights_only=False``, which runs whatever the file's pickle says: only for checkpoints
    your own runs wrote."""
    return _current_sink().get_checkpoint(weights_only=weights_only)


def is_finite_report(metrics: Metrics) -> bool:
    for value in metrics.values():
        values = value if isinstance(value, list) else [value]
        if not all(math.isfinite(v) for v in values):
            return False
    return True
