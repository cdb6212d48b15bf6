"""The Ray Tune trainables of rescue's experiments; each takes its run's settings
(:mod:`rescue.worker.run_settings`) out of the config before the user's code sees it."""

from __future__ import annotations

from typing import Any

from rescue.worker.command_line import CommandSpec
from rescue.worker.command_trial import run_command
from rescue.worker.reporting import clear_report_sources
from rescue.worker.run_settings import split_settings
from rescue.worker.tune_sink import run_user_train


def train_trial(config: dict[str, Any], *, script: str, entry: str) -> None:
    """The trainable of a ``train(config)`` script. Tune reuses a worker for the next trial (a
    fresh one costs seconds of imports), so the last trial's ``rescue.watch`` hooks are dropped
    and the script is imported again: each run starts as it would in a fresh process."""
    params, settings = split_settings(config)
    clear_report_sources()
    run_user_train(
        params,
        script=script,
        entry=entry,
        resume_from=settings.get("resume_from"),
        log_dir=settings.get("log_dir"),
        fresh=True,
    )


def command_trial(config: dict[str, Any], *, spec: CommandSpec) -> None:
    """The trainable of a plain script: its params as flags, its output in its run folder."""
    params, settings = split_settings(config)
    run_command(params, spec=spec, log_dir=settings["log_dir"])
