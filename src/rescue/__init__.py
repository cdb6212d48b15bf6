"""rescue: supervise a training run, diagnose known failures from its metrics, restart it fixed."""

from rescue.reporting import get_checkpoint, report

__all__ = ["report", "get_checkpoint", "__version__"]
__version__ = "0.1.0"
