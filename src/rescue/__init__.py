"""rescue: supervise a training run, diagnose known failures from its metrics, restart it fixed."""

from typing import Any

from rescue.worker.reporting import get_checkpoint, report

__all__ = ["report", "get_checkpoint", "watch", "__version__"]


def watch(model: Any, optimizer: Any = None, every: int = 50) -> Any:
    """Add the model's health signals (gradient norms, update ratio, dead and saturated units,
    input and output statistics) to every ``rescue.report``; see :mod:`rescue.worker.model_watch`.
    Returns the :class:`~rescue.worker.model_watch.ModelWatch`, or None if ``model`` is not a torch
    module."""
    from rescue.worker.model_watch import watch as watch_model  # torch only when asked for

    return watch_model(model, optimizer, every)


__version__ = "0.1.0"
