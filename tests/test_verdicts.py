"""When a finding may stop a run: detectors count each metric's own observations, a
transient must hold before it stops anything, and a run on course to meet its target is left
alone. Pure logic on recorded streams, no Ray."""

import math

import pytest

from rescue.config import Target
from rescue.detectors import Detector
from rescue.detectors.course import course_of, on_course
from rescue.detectors.run_monitor import replay_run
from rescue.detectors.stream import MetricStream
from rescue.policy import load_policy
from rescue.policy.evidence import Side, read_side

POLICY = load_policy("default")


def stream_of(reports, targets=None):
    stream = MetricStream(targets=targets)
    for report in reports:
        stream.append(report)
    return stream


def test_a_spike_that_recovers_within_the_confirmation_is_left_alone():
    # Falling, then three reports far above the best, then back on the curve.
    losses = [1 / (1 + 0.2 * i) for i in range(30)]
    losses[15:18] = [0.9, 1.0, 1.05]
    watch = replay_run(POLICY, [{"loss": v} for v in losses], completed=False)
    assert watch.verdict is None
    assert any(n.startswith("divergence") and "did not hold" in n for n in watch.notes)


def test_a_climb_that_goes_on_is_stopped_once_confirmed():
    losses = [1 / (1 + 0.2 * i) for i in range(15)] + [0.3 * 1.15**i for i in range(15)]
    watch = replay_run(POLICY, [{"loss": v} for v in losses], completed=False)
    assert watch.verdict.signature == "divergence"
    assert "held for 1 more reports" in watch.verdict.reason


def test_a_finding_waits_while_every_target_is_on_course():
    # Oscillating but falling steadily toward its target along the run's declared length.
    values = [2.0 * 0.97**i * (1.25 if i % 2 else 0.75) for i in range(60)]
    targets = {"loss": Target(below=0.2)}
    policy_file = load_policy("default")
    watch = replay_run(policy_file, [{"loss": v} for v in values], targets=targets)
    assert watch.verdict is None or watch.verdict.signature != "oscillation"


def test_course_reads_improving_worsening_and_an_early_blow_up():
    improving = course_of(stream_of([{"loss": 0.9**i} for i in range(20)]))
    assert improving.improving and not improving.worsening and not improving.early_spike
    worsening = course_of(stream_of([{"loss": 0.1 * 1.1**i} for i in range(20)]))
    assert worsening.worsening and not worsening.improving
    blown = course_of(stream_of([{"loss": v} for v in [2.3, 40.0, 55.0] + [50.0] * 20]))
    assert blown.early_spike


def test_an_improvement_too_slow_to_reach_the_target_steers_but_does_not_bound():
    # 20 reports falling 5% each are on pace for 0.1 (about 45 reports in all); the same
    # fall toward 1e-6 would take 270, over four times the run: a creep, read without firmness.
    falling = [{"loss": 0.95**i} for i in range(20)]
    near = course_of(stream_of(falling, {"loss": Target(below=0.1)}))
    far = course_of(stream_of(falling, {"loss": Target(below=1e-6)}))
    assert near.on_pace and near.pace < 4
    assert far.improving and not far.on_pace and far.pace > 4
    assert read_side("auto", True, "missed_target", near)[:2] == (Side.LOW, True)
    assert read_side("auto", True, "missed_target", far)[:2] == (Side.LOW, False)


def test_on_course_projects_the_trend_to_the_runs_end():
    stream = stream_of([{"loss": 0.95**i} for i in range(20)], {"loss": Target(below=0.1)})
    assert on_course(stream, length=100)  # 0.95^100 is far below 0.1
    assert not on_course(stream, length=25)  # five more reports are not enough
    flat = stream_of([{"loss": 0.5}] * 20, {"loss": Target(below=0.1)})
    assert not on_course(flat, length=1000)
    assert not on_course(stream_of([{"loss": 0.5}]))  # no target: nothing to be on course to


def test_a_noisy_score_rising_over_the_run_is_on_course_though_its_last_ten_are_flat():
    # An accuracy measured on a tiny batch every step: +0.002 a step under noise of ±0.03, so
    # any ten values in a row show no clear trend, but the last 64 do, and it reaches 0.72.
    noise = [0.03 * (1 if (i * 7919) % 3 else -1) * ((i * 104729) % 5) / 4 for i in range(230)]
    values = [0.24 + 0.002 * i + noise[i] for i in range(230)]
    stream = stream_of([{"val_acc": v} for v in values], {"val_acc": Target(above=0.72)})
    assert on_course(stream, length=300)
    assert not on_course(stream, length=235)  # five more are not enough
    flat = [0.5 + n for n in noise]  # the same noise around no trend at all
    assert not on_course(
        stream_of([{"val_acc": v} for v in flat], {"val_acc": Target(above=0.72)}), length=300
    )


def test_a_held_out_metric_printed_once_before_training_is_neither_a_plateau_nor_silent():
    reports = [{"val_acc": 0.1, "loss": 2.3}] + [{"loss": 2.3 * 0.99**i} for i in range(200)]
    watch = replay_run(POLICY, reports, targets={"val_acc": Target(above=0.9)}, completed=False)
    assert watch.findings == []


def test_a_sparse_eval_metric_improving_fourfold_is_not_a_plateau():
    # An evaluation every 7th report that improves 4x at its third evaluation.
    reports = []
    evals = iter([1.0, 1.0, 0.25, 0.24, 0.23, 0.2, 0.19, 0.18, 0.17])
    for step in range(63):
        report = {"loss": 1 / (1 + 0.05 * step)}
        if step % 7 == 0:
            report["val_loss"] = next(evals)
        reports.append(report)
    watch = replay_run(POLICY, reports, targets={"val_loss": Target(below=0.15)}, completed=False)
    assert all(f.signature != "plateau" for f in watch.findings)


def test_an_early_collapse_onto_the_majority_while_the_minority_rises_is_not_stopped():
    usage = [[1.0 - m, m] for m in [0.0] * 12 + [0.002 * k for k in range(1, 40)]]
    watch = replay_run(POLICY, [{"pred_usage": u} for u in usage], completed=False)
    assert all(f.signature != "class_collapse" for f in watch.findings)
    stuck = [[1.0, 0.0]] * 30
    watch = replay_run(POLICY, [{"pred_usage": u} for u in stuck], completed=False)
    assert watch.verdict.signature == "class_collapse"


def test_a_layer_with_an_exactly_zero_gradient_and_a_creeping_loss_is_dead():
    # An output bias learning the class prior: the loss creeps 2.30 -> 2.20 while one
    # layer's gradient norm is exactly zero at every report.
    reports = [
        {"loss": 2.30 - 0.004 * i, "grad_norm_min_layer": 0.0, "grad_norm_max_layer": 0.3}
        for i in range(25)
    ]
    watch = replay_run(POLICY, reports, completed=False)
    assert watch.verdict.signature == "dead_output"
    assert watch.verdict.metric == "grad_norm_min_layer"


def test_a_zero_grad_norm_next_to_a_loss_that_learns_is_a_logging_bug():
    reports = [{"loss": 2.3 * 0.9**i, "grad_norm": 0.0} for i in range(30)]
    watch = replay_run(POLICY, reports, completed=False)
    assert watch.verdict is None
    assert [(f.signature, f.metric) for f in watch.findings] == [("silent_metric", "grad_norm")]


@pytest.mark.parametrize("cadence", [1, 5, 10])
def test_patience_is_counted_in_the_metrics_own_observations(cadence):
    # The same curve of a metric observed every ``cadence`` reports: found at the same
    # observation whatever the cadence.
    values = [1.0, 2.0, 4.0, 8.0, 16.0, math.nan]
    reports = []
    for value in values:
        reports += [{"other": 1.0}] * (cadence - 1) + [{"score_loss": value}]
    watch = replay_run(POLICY, reports, completed=False)
    found = watch.verdict
    assert found is not None and found.signature in ("divergence", "explosion", "non_finite")
    observation = sum(1 for r in reports[: found.step + 1] if "score_loss" in r)
    assert observation <= len(values)


class LossAboveOne(Detector):
    """A detector that fires on every report, for the hold-off below."""

    signature = "loss_above_one"

    def on_report(self, stream):
        if stream.latest.get("loss", 0) > 1:
            return self.finding(stream, "loss", "loss above 1")
        return None


def test_a_finding_held_off_while_on_course_is_noted_once(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "extends: default\nsignatures:\n"
        f"  loss_above_one: {{detector: '{__name__}:LossAboveOne', remedies: [lr_cut], "
        "confirm: 15}\n"
    )
    reports = [{"loss": 2.0, "accuracy": 0.5 + 0.01 * i} for i in range(40)]
    watch = replay_run(
        load_policy(str(path)), reports, targets={"accuracy": Target(above=0.8)}, length=60
    )
    assert watch.verdict is None  # the accuracy is on course to pass 0.8 by report 60
    held = [note for note in watch.notes if note.startswith("loss_above_one held off")]
    assert len(held) == 1, held
