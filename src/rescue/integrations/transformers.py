"""Hugging Face ``Trainer``: ``Trainer(..., callbacks=[RescueCallback()])`` sends each log event
(training loss, gradient norm, learning rate; the ``eval_*`` metrics of each evaluation) to
rescue as one report, with the trainer's ``global_step`` as the metric ``step``. The summary
the trainer logs once training is over is not a measurement and is left out.

When rescue stops the run (a finding, the budget, Ctrl-C), the callback sets
``control.should_training_stop``: the trainer ends after the current step, as it would at its
own end, and reports nothing more.

>>> from transformers import TrainerControl, TrainerState, TrainingArguments
>>> from rescue.worker.reporting import PrintSink, install_sink
>>> outside = install_sink(PrintSink())  # by hand, reports are printed, numbered from 0
>>> callback, control = RescueCallback(), TrainerControl()
>>> state = TrainerState(global_step=10)
>>> callback.on_log(None, state, control, logs={"loss": 2.3, "learning_rate": 1e-3, "epoch": 0.5})
step 0 | loss 2.3 | learning_rate 0.001 | epoch 0.5 | step 10
>>> callback.on_log(None, state, control, logs={"train_runtime": 9.1, "train_loss": 2.0})
>>> _ = install_sink(outside)
"""

from __future__ import annotations

import numbers
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState

import rescue

SUMMARY_KEY = "train_runtime"  # in the one log event that sums up a finished training


class RescueCallback(TrainerCallback):
    """Report the trainer's log events to rescue; see the module docstring."""

    def __init__(self) -> None:
        self.stopped = False

    def on_log(
        self,
        args: Any,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.stopped or not logs or SUMMARY_KEY in logs:
            return
        metrics = {
            name: float(value)
            for name, value in logs.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)
        }
        if not metrics:
            return
        metrics["step"] = float(state.global_step)
        try:
            rescue.report(metrics)
        except SystemExit:  # rescue stopped the run: end the training as the trainer would
            self.stopped = True
            control.should_training_stop = True
