"""The Ray Tune trainables of rescue's experiments; each takes its run's settings
(:mod:`rescue.worker.run_settings`) out of the config before the user's code sees it."""

from __future__ import annotations

from typing import Any

from rescue.detectors.judge import JudgeSpec
from rescue.worker.command_line import CommandSpec
from rescue.worker.command_trial import run_command
from rescue.worker.judging import BatchJudge
from rescue.worker.reporting import clear_report_sources
from rescue.worker.run_settings import split_settings
from rescue.worker.tune_sink import run_user_train


def train_trial(
    config: dict[str, Any], *, script: str, entry: str, judge: JudgeSpec | None = None
) -> None:
    """The trainable of a ``train(config)`` script. Tune reuses a worker for the next trial (a
    fresh one costs seconds of imports), so the last trial's ``rescue.watch`` hooks are dropped
    and the script is imported again: each run starts as it would in a fresh process. With
    ``judge``, the run is judged here (:mod:`rescue.worker.judging`)."""
    params, settings = split_settings(config)
    clear_report_sources()
    run_user_train(
        params,
        script=script,
        entry=entry,
        resume_from=settings.get("resume_from"),
        log_dir=settings.get("log_dir"),
        fresh=True,
        judge=_judge(judge, settings),
    )


def command_trial(
    config: dict[str, Any], *, spec: CommandSpec, judge: JudgeSpec | None = None
) -> None:
    """The trainable of a plain script: its params as flags, its output in its run folder."""
    params, settings = split_settings(config)
    run_command(params, spec=spec, log_dir=settings["log_dir"], judge=_judge(judge, settings))


def _judge(spec: JudgeSpec | None, settings: dict[str, Any]) -> BatchJudge | None:
    """The run's judge, after the reports an interrupted run goes on from."""
    if spec is None:
        return None
    return BatchJudge.build(spec, settings.get("replay", ()))
