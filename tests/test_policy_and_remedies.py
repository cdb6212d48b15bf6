"""Policies are data; remedies become exactly the Optuna distributions they allow."""

from collections import Counter

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from rescue.config import Knob
from rescue.detectors import Detector, detector_class, register_detector
from rescue.findings import Finding
from rescue.policy import CannotRemedy, Choice, PolicyError, load_policy
from rescue.remedies import Lessons, Remedy

LR = Knob(role="learning_rate", low=1e-6, high=1.0, log=True)
NORM = Knob(role="normalization", choices=["none", "batch", "running"])
INIT = Knob(role="init", choices=["zeros", "small_uniform", "default"])
EVERY = Knob(role="resample_every", low=1, high=100)
WARM = Knob(role="warmup", low=0, high=200)


def finding(signature):
    return Finding(signature, "loss", 5, "test")


def test_lr_cut_is_a_log_range_between_a_hundredth_and_a_half_of_the_current_value():
    space = load_policy("default").remedies["lr_cut"].search_space(
        {"lr": LR}, {"lr": 0.01}, Lessons()
    )
    assert space == {"lr": FloatDistribution(1e-4, 5e-3, log=True)}


def test_ranges_are_clipped_to_the_knob_domain_and_an_exhausted_one_is_empty():
    cut = load_policy("default").remedies["lr_cut"]
    assert cut.search_space({"lr": LR}, {"lr": 1e-5}, Lessons())["lr"].low == 1e-6
    assert cut.search_space({"lr": LR}, {"lr": 1e-6}, Lessons()) == {}


def test_normalization_swap_prefers_the_seeds_fix_then_any_untried_choice():
    swap = load_policy("default").remedies["normalization_swap"]
    assert swap.search_space({"n": NORM}, {"n": "batch"}, Lessons()) == {
        "n": CategoricalDistribution(["running"])
    }
    lessons = Lessons(excluded={"n": {"running"}})
    assert swap.search_space({"n": NORM}, {"n": "batch"}, lessons) == {
        "n": CategoricalDistribution(["none"])
    }


def test_resampling_goes_to_the_low_end_as_an_integer():
    remedy = load_policy("default").remedies["resample_more_often"]
    assert remedy.search_space({"e": EVERY}, {"e": 100}, Lessons()) == {
        "e": IntDistribution(1, 1)
    }
    assert remedy.search_space({"e": EVERY}, {"e": 1}, Lessons()) == {}


def test_warmup_from_zero_uses_its_span_of_the_domain():
    remedy = load_policy("default").remedies["warmup"]
    dist = remedy.search_space({"w": WARM}, {"w": 0}, Lessons())["w"]
    assert (dist.low, dist.high) == (60, 200)


def test_lessons_narrow_every_later_range():
    policy, lessons = load_policy("default"), Lessons()
    cut = policy.remedies["lr_cut"]
    lessons.learn(cut, {"lr": LR}, {"lr": 0.003})  # lr 0.003 diverged
    raise_ = policy.remedies["lr_raise"]
    dist = raise_.search_space({"lr": LR}, {"lr": 1e-4}, lessons)["lr"]
    assert dist.low == pytest.approx(2e-4) and dist.high < 0.003
    lessons.learn(raise_, {"lr": LR}, {"lr": 1e-4})  # lr 1e-4 was too slow
    dist = cut.search_space({"lr": LR}, {"lr": 0.002}, lessons)["lr"]
    assert dist.low > 1e-4 and dist.high == pytest.approx(1e-3)


def test_the_next_remedy_is_tried_when_one_is_used_up_or_has_no_knob():
    policy = load_policy("default")
    knobs, config = {"lr": LR, "n": NORM}, {"lr": 0.01, "n": "batch"}
    tried = Counter()
    choice = policy.choose(finding("explosion"), tried, knobs, config, Lessons())
    assert isinstance(choice, Choice) and choice.remedy.name == "normalization_swap"
    tried[("explosion", "normalization_swap")] = 2
    choice = policy.choose(finding("explosion"), tried, knobs, config, Lessons())
    assert choice.remedy.name == "lr_cut"
    cannot = policy.choose(finding("generalization_gap"), Counter(), knobs, config, Lessons())
    assert isinstance(cannot, CannotRemedy)
    assert "no knob with role resample_every" in cannot.reason
    assert "no knob with role loss_weight" in cannot.reason


def test_a_user_policy_extends_the_default_and_overrides_what_it_names(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "extends: default\n"
        "signatures:\n"
        "  divergence: {params: {rise: 0.5}, remedies: [grad_clip, lr_cut]}\n"
        "  silent_metric: {action: restart, remedies: [retry]}\n"
    )
    policy = load_policy(str(path))
    assert policy.rules["divergence"].params["rise"] == 0.5
    assert policy.rules["divergence"].params["patience"] == 2  # kept from the default
    assert policy.rules["divergence"].remedies == ["grad_clip", "lr_cut"]
    assert policy.action("silent_metric") == "restart"
    assert policy.rules["explosion"] == load_policy("default").rules["explosion"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("signatures: {divergence: {params: {rise: -1}}}", "`rise` must be a finite number > 0"),
        ("signatures: {divergence: {params: {speed: 2}}}", "unexpected keyword argument 'speed'"),
        ("signatures: {divergence: {remedies: [magic]}}", "expected a remedy defined under"),
        ("signatures: {nonsense: {}}", "no detector for signature 'nonsense'"),
        ("remedies: {lr_cut: {role: learning_rate}}", "a change: scale, span, to or swap"),
        ("signatures: {divergence: {action: stop}}", "restart"),
        ("rules: {}", "unknown key"),
    ],
)
def test_bad_policies_are_refused_with_the_entry_named(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: default\n" + text + "\n")
    with pytest.raises(PolicyError, match="bad.yaml") as info:
        load_policy(str(path))
    assert message in str(info.value)


class LossAboveTen(Detector):
    """A user's own detector."""

    signature = "loss_above_ten"

    def on_report(self, stream):
        if stream.latest.get("loss", 0) > 10:
            return self.finding(stream, "loss", "loss above 10")
        return None


def test_a_users_detector_class_is_registered_by_name(tmp_path):
    register_detector(LossAboveTen)
    assert detector_class("loss_above_ten") is LossAboveTen
    path = tmp_path / "p.yaml"
    path.write_text(
        "extends: default\nsignatures:\n"
        f"  loss_above_ten: {{detector: '{__name__}:LossAboveTen', remedies: [lr_cut]}}\n"
    )
    policy = load_policy(str(path))
    assert any(isinstance(d, LossAboveTen) for d in policy.detectors())


def test_remedy_direction_says_which_side_failed():
    assert Remedy(role="x", scale=(0.01, 0.5)).direction == "down"
    assert Remedy(role="x", scale=(2, 10)).direction == "up"
    assert Remedy(role="x", to="low").direction == "down"
    assert Remedy(role="x", swap={"a": ["b"]}).direction is None


def test_a_categorical_swap_can_be_asked_from_the_study(tmp_path):
    from rescue.study import RescueStudy

    study = RescueStudy(f"sqlite:///{tmp_path / 's.db'}", "t")
    knobs = {"n": NORM, "lr": LR}
    trial, values = study.ask(knobs, {"n": "none", "lr": 0.01})
    assert values == {"n": "none", "lr": 0.01}
    study.study.tell(trial, 1.0)
    space = load_policy("default").remedies["normalization_swap"].search_space(
        {"n": NORM}, {"n": "none"}, Lessons()
    )
    _, values = study.ask(knobs, {"n": "none", "lr": 0.01}, space)
    assert values == {"n": "running", "lr": 0.01}
