"""Signatures found on real torch runs that fail for real, and not on their healthy twins."""

import pytest
import torch
import yaml

from example_runs import EXAMPLES, record_example
from rescue.config import Target
from rescue.detectors.run_monitor import replay_run
from rescue.policy import load_policy
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


def test_a_likelihood_loss_flat_while_accuracy_climbs_is_not_stuck():
    # regime_dmm, fixed settings, seed 3: the loss sits within ±3% for 20 reports (most of it
    # is the data's own entropy) while regime accuracy climbs from 0.62 to 0.79.
    reports = record_example("regime_dmm", input_norm="running", seed=3, steps=400)
    watch = replay_run(load_policy("default"), reports, targets=_targets("regime_dmm"))
    assert watch.findings == []
    assert reports[-1]["regime_acc"] > 0.7


def test_without_the_score_guard_the_same_run_would_be_stopped_as_stuck(tmp_path):
    reports = record_example("regime_dmm", input_norm="running", seed=3, steps=400)
    unguarded = tmp_path / "unguarded.yaml"
    # Nor held off because the accuracy target is on course, nor because it is early in the
    # run (a merely flat loss waits for `elapsed` of a declared length): the score guard alone.
    unguarded.write_text(
        "signatures: {stuck_constant: {params: {score_guard: false, elapsed: 0.01},"
        " hold_on_course: false}}\n"
    )
    watch = replay_run(
        load_policy(str(unguarded)), reports, targets=_targets("regime_dmm"), length=len(reports)
    )
    assert watch.verdict is not None and watch.verdict.signature == "stuck_constant"


def test_bounded_inputs_are_not_a_silent_metric_but_a_zero_grad_norm_is():
    # dqn_dead_head, fixed init: inputs are bounded by 1, so rescue.watch's input_absmax is
    # legitimately constant; the script's grad_norm, read after zero_grad, is the real bug.
    reports = record_example("dqn_dead_head", head_init="small_uniform", steps=1500)
    watch = replay_run(load_policy("default"), reports, targets=_targets("dqn_dead_head"))
    assert [(f.signature, f.metric) for f in watch.findings] == [("silent_metric", "grad_norm")]
    assert watch.verdict is None


def _targets(example: str) -> dict[str, Target]:
    success = yaml.safe_load((EXAMPLES / example / "cfg.yaml").read_text())["success"]
    return {name: Target(**target) for name, target in success.items()}


def test_a_long_healthy_run_at_its_noise_floor_is_not_oscillating():
    # lstm_divergence at a healthy lr for 300 epochs: train_mse converges within a few epochs
    # and then swings ±20% around 0.007, under its target of 0.01, for the rest of the run.
    reports = record_example("lstm_divergence", lr=0.13, epochs=300)
    watch = replay_run(load_policy("default"), reports, targets=_targets("lstm_divergence"))
    assert watch.findings == []
    assert reports[-1]["train_mse"] < 0.01
