"""``rescue.watch`` on real torch training: what it measures, that it changes nothing, and the
signatures its signals make possible (each against a healthy twin)."""

import pytest
import torch

import rescue
from rescue.detectors.run_monitor import replay_run
from rescue.policy import load_policy
from watched_runs import Recorder, regression_run

HEALTH = {
    "grad_norm_total",
    "grad_norm_min_layer",
    "grad_norm_max_layer",
    "update_ratio",
    "weight_norm",
    "dead_fraction",
    "input_mean",
    "input_std",
    "input_absmax",
    "output_std",
}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def verdict(reports):
    watch = replay_run(load_policy("default"), reports, completed=True)
    return watch.verdict.signature if watch.verdict else None, watch


def test_every_report_carries_the_health_metrics_measured_since_the_last():
    reports = regression_run(steps=100, every=10)  # a report every 10 steps
    assert len(reports) == 10
    assert all(set(r) == {"loss"} | HEALTH for r in reports)
    sparse = regression_run(steps=100, every=20)
    assert [("update_ratio" in r) for r in sparse] == [True, False] * 5  # no stale repeats


def test_watching_changes_neither_the_result_nor_the_random_stream():
    watched = [r["loss"] for r in regression_run(steps=200, every=1)]
    plain = [r["loss"] for r in regression_run(steps=200, watch=False)]
    assert watched == plain  # bit for bit


def test_a_healthy_run_has_healthy_signals_and_no_finding():
    reports = regression_run(steps=300)
    signature, _ = verdict(reports)
    assert signature is None
    last = reports[-1]
    assert last["update_ratio"] < 0.01 and last["dead_fraction"] < 0.2
    assert last["input_absmax"] < 10 and last["output_std"] > 0.3


def test_inputs_a_thousand_times_too_large_are_unscaled_inputs():
    signature, watch = verdict(regression_run(input_scale=1000.0))
    assert signature == "unscaled_inputs"
    assert watch.verdict.evidence["level"] > 1000
    assert load_policy("default").rules[signature].remedies[0] == "normalization_swap"


@pytest.mark.parametrize("activation", [torch.nn.Tanh, torch.nn.Sigmoid])
def test_weights_initialised_eight_times_too_large_saturate(activation):
    reports = regression_run(activation=activation, init_gain=8.0)
    assert reports[-1]["saturated_fraction"] > 0.2
    if activation is torch.nn.Tanh:  # half the tanh units in their flat tails
        signature, watch = verdict(reports)
        assert signature == "saturation" and watch.verdict.step < 10
    healthy = regression_run(activation=activation)
    assert verdict(healthy)[0] is None and healthy[-1]["saturated_fraction"] < 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_too_large_a_learning_rate_kills_relu_units_and_is_seen_as_dying_units(seed):
    reports = regression_run(optimizer="sgd", lr=0.5, seed=seed)
    signature, watch = verdict(reports)
    assert signature == "dying_units"
    assert load_policy("default").rules[signature].remedies[0] == "lr_cut"
    assert reports[0]["dead_fraction"] < 0.1 and reports[-1]["dead_fraction"] > 0.4
    # From the loss alone (stuck near 0.8, no target) nothing is wrong.
    assert verdict([{"loss": r["loss"]} for r in reports])[0] is None
    assert verdict(regression_run(optimizer="sgd", lr=0.05, seed=seed))[0] is None


def tanh_sgd(lr, seed):
    return regression_run(
        optimizer="sgd",
        lr=lr,
        activation=torch.nn.Tanh,
        report_every=2,
        every=2,
        steps=200,
        seed=seed,
    )


def test_large_updates_can_be_seen_before_the_loss_explodes():
    reports = tanh_sgd(0.2, seed=0)
    signature, watch = verdict(reports)
    _, by_loss = verdict([{"loss": r["loss"]} for r in reports])
    assert signature == "large_updates"
    assert by_loss.verdict.signature == "explosion"
    assert watch.verdict.step < by_loss.verdict.step


@pytest.mark.parametrize("lr, seed", [(0.2, 0), (0.3, 0), (0.3, 1), (0.3, 2)])
def test_watching_never_delays_a_diagnosis(lr, seed):
    reports = tanh_sgd(lr, seed)
    _, watched = verdict(reports)
    _, by_loss = verdict([{"loss": r["loss"]} for r in reports])
    assert by_loss.verdict is not None and watched.verdict.step <= by_loss.verdict.step


def test_an_early_spike_that_recovers_is_a_transient_not_a_divergence():
    # lr 0.15, seed 1: the loss climbs 0.28 -> 0.37 in its first reports, then falls to 7e-4.
    reports = tanh_sgd(0.15, seed=1)
    _, by_loss = verdict([{"loss": r["loss"]} for r in reports])
    assert by_loss.verdict is None and reports[-1]["loss"] < 1e-3
    assert any("divergence" in note and "did not hold" in note for note in by_loss.notes)


def test_a_stable_learning_rate_gives_no_finding():
    assert verdict(tanh_sgd(0.1, seed=0))[0] is None


def test_not_a_torch_module_is_a_one_line_notice(capsys):
    assert rescue.watch(object()) is None
    assert "not a torch.nn.Module; nothing is watched" in capsys.readouterr().err


def test_closing_removes_every_hook():
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watcher = rescue.watch(model, opt, every=1)
    watcher.close()
    recorder = Recorder()
    previous = rescue.worker.reporting.install_sink(recorder)
    try:
        model(torch.randn(8, 2)).sum().backward()
        opt.step()
        rescue.report(loss=1.0)
    finally:
        rescue.worker.reporting.install_sink(previous)
    assert recorder.reports == [{"loss": 1.0}]
