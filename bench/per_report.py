"""A Ray Tune trainable that sends one Tune result per ``rescue.report``, as a script written
for Ray Tune calls ``ray.tune.report`` once per step or epoch: the baseline that bare Ray Tune,
ASHA and the like are measured with (their ``training_iteration`` then counts reports).

Imported by the bench scripts; a worker gets it by value (``cloudpickle``), since the bench
folder is not on its path."""

from __future__ import annotations

import sys

from ray import cloudpickle, tune


def each_report_train(config, *, script, entry):
    """``train(config)`` of ``script`` with one Ray Tune result per ``rescue.report``."""
    from rescue.worker.entrypoint import load_entry
    from rescue.worker.reporting import install_sink

    class EachReport:
        def report(self, metrics, checkpoint):
            tune.report(dict(metrics))

        def get_checkpoint(self, weights_only=True):
            return None

    install_sink(EachReport())
    load_entry(script, entry)(dict(config))


cloudpickle.register_pickle_by_value(sys.modules[__name__])
