"""A fast, representative slice of the generalisation corpus (bench/corpus.py runs all of
it): the real policy, detectors and Optuna study on recorded runs of real training programs,
dev cases only. Each case's runs are trained here, directly, the first time."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from corpuskit.cases import CASES, load_case  # noqa: E402
from corpuskit.evaluate import score_replay  # noqa: E402

SLICE = [
    "m_targets_raw_everystep_mlp",  # raw targets explode: a normalisation swap
    "m_momentum_everystep_mlp",  # momentum 0.999 at the end of its domain, cut first
    "m_init_everystep_mlp_zeros_cli",  # a plain script with regex metrics: re-initialise
    "h_step_schedule",  # a flat stretch before a scheduled drop: not a plateau
    "h_imbalance_recovers",  # an early collapse onto the majority class that recovers
    "h_saddle_escape",  # a long plateau at the starting loss before sudden drops
    "s_gaussian_nll_lr_high",  # torch.distributions raises on NaN weights: a crash read as NaN
]


@pytest.mark.parametrize("name", SLICE)
def test_rescue_is_right_on_a_corpus_case(name):
    case = load_case(CASES / name)
    assert case.split == "dev"
    scored = score_replay(case)
    assert scored.crash is None, scored.crash
    assert scored.right, (scored.outcome, scored.verdicts, scored.changes, scored.summary)
