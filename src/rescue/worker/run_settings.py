"""What rescue tells a Ray Tune trial about its run, beside the user's params in its config:
its folder, the checkpoint it goes on from. Taken out before the user's code sees the config.
Ray-free: the driver builds these, the worker reads them."""

from __future__ import annotations

from typing import Any

RUN_KEY = "rescue_run"


def with_settings(params: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """A trial's config: ``params`` and the run's settings that are set.

    >>> with_settings({"lr": 0.1}, log_dir="/out/runs/run-000", resume_from=None)
    {'lr': 0.1, 'rescue_run': {'log_dir': '/out/runs/run-000'}}
    """
    return {**params, RUN_KEY: {k: v for k, v in settings.items() if v is not None}}


def split_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user's params and the run's settings of a trial's config.

    >>> split_settings({"lr": 0.1, "rescue_run": {"log_dir": "/x"}})
    ({'lr': 0.1}, {'log_dir': '/x'})
    """
    params = dict(config)
    settings = params.pop(RUN_KEY, None) or {}
    return params, dict(settings)
