"""Each seed failure, rebuilt from its printed numbers, is diagnosed as the seed diagnosed it,
by the default policy's detectors in their order of precedence."""

import pytest

import seed_fixtures as seeds
from rescue.config import Target
from rescue.detectors.run_monitor import replay_run
from rescue.policy import load_policy


def diagnose(reports, tmp_path, kinds=None, targets=None, completed=False):
    return replay_run(load_policy("default"), reports, kinds, targets, completed)


def test_seed_000_outputs_flat_at_zero_are_a_dead_output(tmp_path):
    watch = diagnose(seeds.seed_000_flat_zero_outputs(), tmp_path)
    assert watch.verdict.signature == "dead_output"
    assert watch.verdict.metric == "output_std"
    assert "the outputs are a constant" in watch.verdict.reason
    assert watch.verdict.step == 9  # confirmed after the detector's patience of 10 reports


def test_seed_002_lstm_divergence(tmp_path):
    watch = diagnose(seeds.seed_002_divergence(), tmp_path)
    assert watch.verdict.signature == "divergence"
    assert watch.verdict.metric == "loss"
    assert "above its best (0.2847" in watch.verdict.reason


def test_seed_003_dead_head_is_opposing_losses_and_a_silent_grad_norm(tmp_path):
    watch = diagnose(seeds.seed_003_dead_head(), tmp_path)
    assert watch.verdict.signature == "opposing_losses"
    assert watch.verdict.evidence["rising"] == "dloss"
    assert watch.verdict.evidence["falling"] == "closs"
    warnings = [f for f in watch.findings if f.action == "warn"]
    assert [(f.signature, f.metric) for f in warnings] == [("silent_metric", "grad_norm")]
    # The zero gradient norm is an instrumentation bug while the losses move, not a dead net.
    assert all(f.signature not in ("dead_output", "divergence") for f in watch.findings)


def test_seed_004_unnormalised_returns_explode(tmp_path):
    watch = diagnose(seeds.seed_004_explosion(), tmp_path)
    assert watch.verdict.signature == "explosion"
    assert watch.verdict.step == 1  # confirmed on the second evaluation
    assert "998829" in watch.verdict.reason or "natural scale" in watch.verdict.reason


def test_seed_004_batch_normalised_returns_stick_at_one(tmp_path):
    watch = diagnose(seeds.seed_004_stuck(), tmp_path)
    assert watch.verdict.signature == "stuck_constant"
    assert watch.verdict.evidence["about_one"] is True
    assert "normalised per batch" in watch.verdict.reason


def test_seed_004_block_or_allow_everything_is_class_collapse(tmp_path):
    watch = diagnose(
        seeds.seed_004_confusion(), tmp_path, targets={"f1": Target(above=0.5)}, completed=True
    )
    assert watch.verdict.signature == "class_collapse"
    assert watch.verdict.evidence["usage"] == [1.0, 0.0]


def test_seed_001_collapse_onto_panic(tmp_path):
    watch = diagnose(seeds.seed_001_panic(), tmp_path)
    assert watch.verdict.signature == "class_collapse"
    assert watch.verdict.evidence["dominant_class"] == 3


def test_seed_001_uniform_predictions(tmp_path):
    watch = diagnose(seeds.seed_001_uniform(), tmp_path)
    assert watch.verdict.signature == "uniform_collapse"
    assert "log 4" in watch.verdict.reason


@pytest.mark.parametrize(
    "fixture, remedy",
    [
        (seeds.seed_002_divergence, "lr_cut"),
        (seeds.seed_003_dead_head, "reinit"),
        (seeds.seed_004_explosion, "normalization_swap"),
        (seeds.seed_004_stuck, "normalization_swap"),
        (seeds.seed_001_panic, "normalization_swap"),
        (seeds.seed_001_uniform, "warmup"),
    ],
)
def test_the_policy_prescribes_the_seeds_own_fix_first(fixture, remedy, tmp_path):
    watch = diagnose(fixture(), tmp_path)
    assert load_policy("default").rules[watch.verdict.signature].remedies[0] == remedy
