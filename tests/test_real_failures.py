"""Signatures found on real torch runs that fail for real, and not on their healthy twins."""

import pytest
import torch

from rescue.policy import load_policy
from rescue.run_watch import replay_run
from unrepresentative_runs import regression


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_on_one_narrow_sample_is_a_generalization_gap(seed):
    watch = replay_run(load_policy("default"), regression("slice", seed), completed=True)
    assert watch.verdict is not None
    assert watch.verdict.signature == "generalization_gap"
    assert watch.verdict.metric == "val_loss"
    assert watch.verdict.evidence["train_metric"] == "train_loss"
    assert watch.verdict.evidence["held_out"] > 10 * watch.verdict.evidence["train"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fresh_samples_every_step_give_no_finding(seed):
    reports = regression("fresh", seed)
    watch = replay_run(load_policy("default"), reports, completed=True)
    assert watch.findings == []
    assert reports[-1]["val_loss"] < 0.05  # it learned the function
