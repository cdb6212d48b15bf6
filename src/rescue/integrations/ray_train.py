"""A run that is itself distributed with Ray Train, supervised as one run.

``train(config)`` builds the trainer as usual and passes one callback; the training loop calls
``rescue.report`` on every worker, as it would call ``ray.train.report``::

    import rescue
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from rescue.integrations.ray_train import RescueCallback

    def loop(config):
        ...
        rescue.report(loss=loss.item())  # on every worker, the same number of times

    def train(config):
        TorchTrainer(
            loop,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=2),
            run_config=RunConfig(callbacks=[RescueCallback()]),
        ).fit()

Inside a Ray Train worker ``rescue.report`` goes through ``ray.train.report``, which is a
barrier: every worker must report as often as the others. Rank 0's reports are the run's
reports; Ray Tune's own ``TuneReportCallback`` carries them to the rescue. A stop ends the
trial, and with it the trainer and all its workers, which Ray ties to the trial that made
them. Checkpoints passed to ``rescue.report`` in a worker are not kept: a ``restart:
checkpoint`` remedy restarts such a run fresh.

Outside a rescue (the script run by hand) the callback does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import ray.train
from ray.train.v2._internal.constants import HEALTH_CHECK_INTERVAL_S_ENV_VAR
from ray.train.v2.api.callback import UserCallback
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.trainable.trainable_fn_utils import _in_tune_session

from rescue.worker.report_batch import Batcher
from rescue.worker.reporting import Metrics

POLL_SECONDS = "0.01"


def _train_report(result: dict[str, Any], checkpoint: Mapping[str, Any] | None) -> None:
    ray.train.report(result)


class TrainWorkerSink:
    """Sends every report at once (a batch of one): workers must call ``ray.train.report``
    equally often, so a batch may not close on a timer that runs differently on each."""

    def __init__(self) -> None:
        self.batcher = Batcher(_train_report, most=1)

    def report(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None) -> None:
        self.batcher.add(metrics)

    def get_checkpoint(self, weights_only: bool = True) -> dict[str, Any] | None:
        return None


def worker_sink() -> TrainWorkerSink | None:
    """The sink for this process when it is a Ray Train worker, else None."""
    try:
        ray.train.get_context()
    except Exception:  # not inside a Ray Train worker (Ray raises RuntimeError)
        return None
    return TrainWorkerSink()


class RescueCallback(UserCallback):
    """Carries rank 0's reports to the rescue's trial; does nothing outside a rescue.

    Ray Train's controller takes one report from each worker per poll, every 2 s by default,
    and ``ray.train.report`` waits for it: with this callback the poll runs every 10 ms (about
    14 ms a report, measured on two workers), unless ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` is
    set. Constructed before ``fit()``, which hands the setting on to the controller."""

    def __init__(self) -> None:
        os.environ.setdefault(HEALTH_CHECK_INTERVAL_S_ENV_VAR, POLL_SECONDS)
        self._tune = TuneReportCallback() if _in_tune_session() else None

    def after_report(self, run_context, metrics, checkpoint) -> None:
        if self._tune is not None:
            self._tune.after_report(run_context, metrics, checkpoint)
