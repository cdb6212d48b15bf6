"""Policies are data; the evidence of the runs so far decides which way and how far each
remedy moves its knob, and when remedies run out the other knobs get their turn."""

import math
from collections import Counter

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from rescue.config import Knob
from rescue.detectors import Detector, detector_class, register_detector
from rescue.detectors.findings import Finding
from rescue.policy import (
    CannotRemedy,
    Choice,
    Evidence,
    Observation,
    PolicyError,
    Remedy,
    Side,
    choose,
    load_policy,
)

LR = Knob(role="learning_rate", low=1e-6, high=1.0, log=True)
NORM = Knob(role="normalization", choices=["none", "batch", "running"])
INIT = Knob(role="init", choices=["zeros", "small_uniform", "default"])
EVERY = Knob(role="resample_every", low=1, high=100)
WARM = Knob(role="warmup", low=0, high=200)
CLIP = Knob(role="grad_clip", low=0.01, high=10.0, log=True)
POLICY = load_policy("default")


def finding(signature):
    return Finding(signature, "loss", 5, "test")


def observed(evidence, run, config, signature, side=Side.NEUTRAL, firm=True, healthy=False):
    obs = Observation(run, dict(config), healthy, signature, side, firm, f"{signature} (test)")
    return evidence.add(obs)


def next_move(signature, config, knobs, evidence=None, turns=None, side=None, firm=True):
    """The choice after a run with ``config`` diagnosed as ``signature``."""
    evidence = evidence or Evidence()
    rule = POLICY.rules[signature]
    if side is None:
        side = {"too_high": Side.HIGH, "too_low": Side.LOW}.get(rule.side, Side.NEUTRAL)
    obs = observed(evidence, len(evidence.observations), config, signature, side, firm)
    return choose(POLICY, finding(signature), obs, evidence, knobs, config, turns or Counter())


def test_a_first_cut_is_the_remedys_window_below_the_value_that_diverged():
    choice = next_move("divergence", {"lr": 0.01}, {"lr": LR})
    assert choice.name == "lr_cut"
    assert choice.space == {"lr": FloatDistribution(1e-4, 5e-3, log=True)}


def test_ranges_are_clipped_to_the_domain_and_an_exhausted_knob_goes_to_the_next_remedy():
    choice = next_move("divergence", {"lr": 1e-5, "clip": 1.0}, {"lr": LR, "clip": CLIP})
    assert choice.space["lr"].low == 1e-6
    # lr already at the bottom of its domain: no value left below it, clipping is next.
    choice = next_move("divergence", {"lr": 1e-6, "clip": 1.0}, {"lr": LR, "clip": CLIP})
    assert choice.name == "grad_clip" and choice.space["clip"].high == pytest.approx(0.5)


def test_a_raise_after_an_early_blow_up_is_turned_into_a_cut():
    # stuck_constant's remedies end in lr_raise; a run that blew up and stayed high says
    # the learning rate was too high, so the move goes down.
    choice = next_move("stuck_constant", {"lr": 0.1}, {"lr": LR}, side=Side.HIGH)
    assert choice.name == "lr_raise" and choice.directions == {"lr": "down"}
    assert choice.space["lr"].high < 0.1 and "turned down" in choice.why


def test_a_neutral_run_is_no_bound_so_a_wrong_raise_is_undone_below_it():
    # Run 0 at lr 1e-3 is stuck (neutral); the raise to 5e-3 diverges (firmly too high).
    # The cut that follows may go below 1e-3: a neutral run bounds nothing.
    evidence = Evidence()
    observed(evidence, 0, {"lr": 1e-3}, "stuck_constant")
    choice = next_move("divergence", {"lr": 5e-3}, {"lr": LR}, evidence)
    assert choice.name == "lr_cut" and choice.space["lr"].low < 1e-3 / 10


def test_a_bracket_bounds_every_later_range_and_its_middle_is_drawn_from():
    evidence = Evidence()
    observed(evidence, 0, {"lr": 1e-5}, "plateau", Side.LOW)  # too slow
    choice = next_move("divergence", {"lr": 1e-2}, {"lr": LR}, evidence)
    dist = choice.space["lr"]
    # The bracket (1e-5, 1e-2), not the remedy's window of the current value, less a fifth
    # of its log width next to each failed end (the policy's search.margin).
    assert dist.low == pytest.approx(10**-4.4) and dist.high == pytest.approx(10**-2.6)
    assert dist.log


def test_moves_on_a_side_that_keeps_failing_reach_further():
    evidence = Evidence()
    observed(evidence, 0, {"lr": 1e-6}, "plateau", Side.LOW)
    first = next_move("plateau", {"lr": 1e-6}, {"lr": LR}, Evidence(), side=Side.LOW)
    second = next_move("plateau", {"lr": 1e-5}, {"lr": LR}, evidence, side=Side.LOW)
    assert first.space["lr"].high == pytest.approx(1e-4)  # 100x, the remedy's window
    assert second.space["lr"].high == pytest.approx(0.1)  # 100^2 from 1e-5: 4 decades


def test_a_raise_from_the_top_of_the_domain_is_exhausted_not_an_error():
    knobs = {"lr": LR, "norm": NORM}
    choice = next_move("plateau", {"lr": 1.0, "norm": "none"}, knobs, side=Side.LOW)
    assert isinstance(choice, Choice) and choice.name == "normalization_swap"
    assert choice.space == {"norm": CategoricalDistribution(["running", "batch"])}


def test_when_the_signatures_remedies_have_no_knob_the_other_declared_knobs_are_tried():
    knobs = {"norm": NORM, "init": INIT}
    choice = next_move("plateau", {"norm": "batch", "init": "zeros"}, knobs)
    assert choice.name == "normalization_swap"  # plateau only lists lr_raise
    assert choice.space == {"norm": CategoricalDistribution(["running", "none"])}


def test_a_remedy_used_for_its_turns_gives_way_and_comes_back_while_room_is_left():
    knobs = {"lr": LR}
    turns = Counter({("plateau", "lr_raise"): 1})
    choice = next_move("plateau", {"lr": 1e-4}, knobs, turns=turns, side=Side.LOW)
    assert choice.name == "lr_raise"  # no other remedy can move anything: it goes on


def test_categories_try_choices_that_have_not_run_in_the_policys_order():
    evidence = Evidence()
    observed(evidence, 0, {"init": "zeros"}, "dead_output")
    observed(evidence, 1, {"init": "small_uniform"}, "dead_output")
    choice = next_move("dead_output", {"init": "small_uniform"}, {"init": INIT}, evidence)
    assert choice.space == {"init": CategoricalDistribution(["default"])}


def test_every_knob_is_explored_once_the_remedies_are_used_up_and_then_it_says_so():
    evidence = Evidence()
    observed(evidence, 0, {"norm": "none"}, "explosion", Side.HIGH)
    observed(evidence, 1, {"norm": "running"}, "explosion", Side.HIGH)
    choice = next_move("explosion", {"norm": "batch"}, {"norm": NORM}, evidence)
    assert isinstance(choice, CannotRemedy)
    assert "no value left" in choice.reason


def test_explore_draws_every_knob_inside_what_the_evidence_leaves():
    evidence = Evidence()
    knobs = {"lr": LR, "every": EVERY}
    config = {"lr": 1e-6, "every": 1}
    choice = next_move("generalization_gap", config, knobs, evidence, side=Side.HIGH)
    # resample_every is at its low end already; loss_weight has no knob; the learning rate is
    # too high at the bottom of its domain, so nothing is left of it: every knob left is
    # explored, inside the domain.
    assert choice.name == "explore" and set(choice.space) == {"every"}
    assert choice.space["every"] == IntDistribution(1, 100)


def test_without_a_side_a_step_size_knob_near_an_end_of_its_domain_moves_inward():
    # A stuck run says nothing about the step size: a learning rate at the bottom of its
    # domain goes up, one at the top goes down, one in the middle follows the remedy.
    up = next_move("stuck_constant", {"lr": 2e-6}, {"lr": LR}, side=Side.NEUTRAL)
    down = next_move("stuck_constant", {"lr": 0.5}, {"lr": LR}, side=Side.NEUTRAL)
    middle = next_move("stuck_constant", {"lr": 1e-3}, {"lr": LR}, side=Side.NEUTRAL)
    assert (up.directions, down.directions) == ({"lr": "up"}, {"lr": "down"})
    assert middle.directions == {"lr": "up"}  # lr_raise, the stuck signature's own remedy


def test_a_move_that_made_things_worse_is_reversed_from_the_value_before_it():
    evidence = Evidence()
    evidence.add(
        Observation(
            0,
            {"lr": 0.01},
            False,
            "missed_target",
            Side.NEUTRAL,
            False,
            "x",
            health=0.3,
            basis="target",
        )
    )
    evidence.add(
        Observation(
            1,
            {"lr": 0.3},
            False,
            "missed_target",
            Side.NEUTRAL,
            False,
            "y",
            health=0.8,
            basis="target",
        )
    )
    choice = choose(
        POLICY,
        finding("missed_target"),
        evidence.observations[-1],
        evidence,
        {"lr": LR},
        {"lr": 0.3},
        Counter(),
    )
    assert choice.directions == {"lr": "down"} and choice.space["lr"].high < 0.01
    assert "made it worse" in choice.why


def test_a_move_that_helped_goes_on_further_and_one_that_did_not_is_put_back():
    evidence = Evidence()
    w = Knob(role="loss_weight", low=1e-4, high=10.0, log=True)
    knobs = {"w": w, "init": INIT}
    evidence.add(
        Observation(
            0,
            {"w": 3e-3, "init": "zeros"},
            False,
            "missed_target",
            Side.NEUTRAL,
            False,
            "x",
            health=0.5,
            basis="target",
        )
    )
    evidence.add(
        Observation(
            1,
            {"w": 2e-2, "init": "zeros"},
            False,
            "missed_target",
            Side.NEUTRAL,
            False,
            "y",
            health=0.4,
            basis="target",
        )
    )
    config = {"w": 2e-2, "init": "zeros"}
    choice = choose(
        POLICY,
        finding("missed_target"),
        evidence.observations[-1],
        evidence,
        knobs,
        config,
        Counter({("missed_target", "loss_weight_raise"): 1}),
    )
    assert choice.name == "loss_weight_raise" and choice.space["w"].low > 2e-2
    # It got clearly closer (0.5 -> 0.4): the next move that way is the same size again.
    assert choice.space["w"].high == pytest.approx(2e-2 * 20)
    # Had it changed nothing (w now mid-domain: no lean), the next remedy moves init and w
    # goes back.
    flat = Evidence(evidence.observations[:1])
    flat.add(
        Observation(
            1,
            {"w": 2e-2, "init": "zeros"},
            False,
            "dead_output",
            Side.NEUTRAL,
            False,
            "y",
            health=0.5,
            basis="target",
        )
    )
    choice = choose(
        POLICY, finding("dead_output"), flat.observations[-1], flat, knobs, config, Counter()
    )
    assert choice.name == "reinit" and choice.reset == {"w": 3e-3}


def test_brackets_hold_only_while_the_other_knobs_hold_their_values():
    evidence = Evidence()
    polarities = {"lr": 1, "init": 0}
    observed(evidence, 0, {"lr": 0.1, "init": "zeros"}, "divergence", Side.HIGH)
    assert evidence.bracket("lr", {"lr": 0.01, "init": "zeros"}, polarities) == (None, 0.1)
    assert evidence.bracket("lr", {"lr": 0.01, "init": "default"}, polarities) == (None, None)


def test_a_shape_only_side_steers_but_does_not_bound():
    evidence = Evidence()
    observed(evidence, 0, {"lr": 0.1}, "dying_units", Side.HIGH, firm=False)
    assert evidence.bracket("lr", {"lr": 0.1}, {"lr": 1}) == (None, None)


def test_a_run_stuck_far_above_where_another_run_started_had_blown_up():
    evidence = Evidence()
    first = Observation(
        0,
        {"lr": 1e-3},
        False,
        "plateau",
        Side.NEUTRAL,
        False,
        "x",
        metric="loss",
        first=2.3,
        level=1.9,
        lower=True,
    )
    evidence.add(first)
    stuck = Observation(
        1,
        {"lr": 10.0},
        False,
        "stuck_constant",
        Side.NEUTRAL,
        False,
        "y",
        metric="loss",
        first=40.0,
        level=41.0,
        lower=True,
    )
    assert evidence.add(stuck, {"lr": 1}).side is Side.HIGH


def _loss_run(run, config, side, first, level, signature="missed_target", firm=True):
    return Observation(
        run,
        config,
        False,
        signature,
        side,
        firm,
        "w",
        metric="loss",
        first=first,
        level=level,
        lower=True,
    )


def test_a_run_with_larger_steps_that_started_far_above_another_had_blown_up_before_reporting():
    # The second run raised the rate and reports every N steps: its first report is 16x the
    # first run's, and it was still recovering at its end ("improving", read as too low).
    evidence = Evidence()
    evidence.add(_loss_run(0, {"lr": 0.3}, Side.LOW, first=3.86, level=3.08, firm=False))
    later = evidence.add(_loss_run(1, {"lr": 0.95}, Side.LOW, 61.5, 10.4), {"lr": 1})
    assert (later.side, later.firm) == (Side.HIGH, True)
    assert "blown up before its first report" in later.why
    assert evidence.bracket("lr", {"lr": 0.95}, {"lr": 1}) == (None, 0.95)


def test_a_higher_start_with_smaller_steps_or_another_loss_is_not_a_blow_up():
    # Smaller steps learn less before the first report: a higher start is slower learning.
    evidence = Evidence()
    evidence.add(_loss_run(0, {"lr": 0.01, "w": 1.0}, Side.NEUTRAL, first=0.4, level=0.3))
    slower = evidence.add(_loss_run(1, {"lr": 1e-4, "w": 1.0}, Side.LOW, 3.4, 3.0), {"lr": 1})
    assert (slower.side, slower.firm) == (Side.LOW, True)
    # A loss weight (a knob unrelated to the step size) changes what the loss measures.
    weighted = evidence.add(_loss_run(2, {"lr": 0.01, "w": 10.0}, Side.LOW, 4.0, 3.0), {"lr": 1})
    assert weighted.side is Side.LOW


def test_warm_up_turns_on_from_zero_over_its_span_and_a_longer_warm_up_is_smaller_steps():
    choice = next_move("uniform_collapse", {"w": 0}, {"w": WARM})
    assert choice.space == {"w": IntDistribution(60, 200)}
    # Divergence says the steps were too large: warm-up (steps: smaller) moves up.
    evidence = Evidence()
    observed(evidence, 0, {"w": 50}, "divergence", Side.HIGH)
    assert evidence.bracket("w", {"w": 50}, {"w": -1}) == (50, None)


def test_resampling_goes_to_the_low_end_as_an_integer_once():
    choice = next_move("generalization_gap", {"e": 100}, {"e": EVERY})
    assert choice.space == {"e": IntDistribution(1, 1)}


def test_remedy_directions_and_windows():
    cut = Remedy(role="x", scale=(0.01, 0.5))
    assert cut.direction == "down" and cut.window("down") == (0.01, 0.5)
    assert cut.window("up") == (2.0, 100.0)
    assert Remedy(role="x", to="low").direction == "down"
    assert Remedy(role="x", swap={"a": ["b"]}).direction is None
    with pytest.raises(ValueError, match="all below 1 or all above 1"):
        Remedy(role="x", scale=(0.5, 2.0))


def test_the_evidence_per_knob_says_what_each_value_led_to():
    evidence = Evidence()
    observed(evidence, 0, {"lr": 1.0}, "divergence", Side.HIGH)
    observed(evidence, 1, {"lr": 0.1}, None, healthy=True)
    table = evidence.per_knob({"lr": 1})
    assert [(r["value"], r["verdict"]) for r in table["lr"]] == [
        (1.0, "too_high"),
        (0.1, "healthy"),
    ]
    assert evidence.lessons({"lr": 0.1}, {"lr": 1}, []) == {
        "upper": {"lr": 1.0},
        "lower": {},
        "excluded": {},
    }


def test_a_user_policy_extends_the_default_and_overrides_what_it_names(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "extends: default\n"
        "signatures:\n"
        "  divergence: {params: {rise: 0.5}, remedies: [grad_clip, lr_cut]}\n"
        "  silent_metric: {action: restart, remedies: [retry]}\n"
        "search: {sampler: random}\n"
    )
    policy = load_policy(str(path))
    assert policy.rules["divergence"].params["rise"] == 0.5
    assert policy.rules["divergence"].params["patience"] == 2  # kept from the default
    assert policy.rules["divergence"].remedies == ["grad_clip", "lr_cut"]
    assert policy.action("silent_metric") == "restart"
    assert policy.rules["explosion"] == POLICY.rules["explosion"]
    assert policy.search.sampler == "random" and policy.search.startup == 2
    assert policy.fallback == POLICY.fallback and policy.polarity("warmup") == -1


@pytest.mark.parametrize(
    "text, message",
    [
        ("signatures: {divergence: {params: {rise: -1}}}", "`rise` must be a finite number > 0"),
        ("signatures: {divergence: {params: {speed: 2}}}", "unexpected keyword argument 'speed'"),
        ("signatures: {divergence: {remedies: [magic]}}", "expected a remedy defined under"),
        ("signatures: {nonsense: {}}", "no detector for signature 'nonsense'"),
        ("remedies: {lr_cut: {role: learning_rate}}", "a change: scale, span, to or swap"),
        ("signatures: {divergence: {action: stop}}", "restart"),
        ("signatures: {divergence: {side: sideways}}", "too_high"),
        ("roles: {learning_rate: {steps: bigger}}", "roles.learning_rate"),
        ("fallback: [magic]", "fallback: expected a list of remedies"),
        ("search: {sampler: cmaes}", "search.sampler"),
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


def test_a_categorical_swap_can_be_asked_from_the_study(tmp_path):
    from rescue.search.study import RescueStudy

    study = RescueStudy(f"sqlite:///{tmp_path / 's.db'}", "t")
    knobs = {"n": NORM, "lr": LR}
    trial, values = study.ask(knobs, {"n": "none", "lr": 0.01})
    assert values == {"n": "none", "lr": 0.01}
    study.study.tell(trial, 1.0)
    choice = next_move("explosion", {"n": "none", "lr": 0.01}, {"n": NORM})
    _, values = study.ask(knobs, {"n": "none", "lr": 0.01}, choice.space)
    assert values == {"n": "running", "lr": 0.01}


def test_no_range_is_ever_empty_or_crosses_the_evidence():
    """Random evidence, random current values: every range lies inside the domain, outside
    every firm bound, and is a valid Optuna distribution (or the knob is exhausted)."""
    import random

    rng = random.Random(0)
    for _ in range(300):
        evidence = Evidence()
        for run in range(rng.randint(0, 4)):
            side = rng.choice([Side.HIGH, Side.LOW, Side.NEUTRAL])
            value = 10 ** rng.uniform(-6, 0)
            observed(evidence, run, {"lr": value}, "divergence", side)
        value = 10 ** rng.uniform(-6, 0)
        signature = rng.choice(["divergence", "plateau", "stuck_constant"])
        side = rng.choice([Side.HIGH, Side.LOW, Side.NEUTRAL])
        choice = next_move(signature, {"lr": value}, {"lr": LR}, evidence, side=side)
        low, high = evidence.bracket("lr", {"lr": value}, {"lr": 1})
        if isinstance(choice, CannotRemedy) or "lr" not in choice.space:
            continue
        dist = choice.space["lr"]
        assert 1e-6 <= dist.low <= dist.high <= 1.0 and math.isfinite(dist.low)
        assert low is None or dist.low > low
        assert high is None or dist.high < high


def test_a_step_size_knob_at_the_end_of_its_domain_is_the_first_suspect():
    # Divergence lists lr_cut first, but a momentum of 0.999 in [0, 0.999] is moved first.
    momentum = Knob(role="momentum", low=0.0, high=0.999)
    knobs = {"lr": LR, "m": momentum}
    choice = next_move("divergence", {"lr": 0.05, "m": 0.999}, knobs)
    assert choice.name == "momentum_cut" and choice.space["m"].high < 0.999
    # A usual momentum, or a knob turned off (clipping at 0), is no suspect.
    assert next_move("divergence", {"lr": 0.05, "m": 0.9}, knobs).name == "lr_cut"
    clip = Knob(role="grad_clip", low=0.0, high=10.0)
    assert next_move("divergence", {"lr": 0.05, "c": 0.0}, {"lr": LR, "c": clip}).name == "lr_cut"


def test_a_number_put_back_returns_to_its_value_in_the_healthiest_run():
    # lr 0.003 -> 0.06 made it worse, -> 3e-5 changed little: when init moves next, lr goes
    # back to 0.003 (the healthiest run's), not to 0.06 (the value before the last move).
    evidence = Evidence()
    for run, (lr, health) in enumerate([(0.003, 0.31), (0.06, 0.55), (3e-5, 0.52)]):
        evidence.add(
            Observation(
                run,
                {"lr": lr, "init": "constant"},
                False,
                "missed_target",
                Side.NEUTRAL,
                False,
                "x",
                health=health,
                basis="target",
            )
        )
    knobs = {"lr": LR, "init": Knob(role="init", choices=["zeros", "constant", "default"])}
    config = {"lr": 3e-5, "init": "constant"}
    choice = choose(
        POLICY,
        finding("dead_output"),
        evidence.observations[-1],
        evidence,
        knobs,
        config,
        Counter(),
    )
    assert choice.name == "reinit" and choice.reset == {"lr": 0.003}
    assert choice.space == {"init": CategoricalDistribution(["default", "zeros"])}


def _runs(evidence, rows, other=None):
    """Observations from (lr, signature, side, firm, health) rows, in run order."""
    for run, (lr, signature, side, firm, health) in enumerate(rows):
        config = {"lr": lr, **(other or {})}
        evidence.add(
            Observation(run, config, False, signature, side, firm, "x", health, basis="target")
        )


def test_a_move_goes_on_into_the_stretch_a_firm_verdict_beyond_it_leaves_open():
    # 6e-5 was firmly too low, 0.44 went nowhere, 0.037 (down from it) no better: below 0.037
    # runs have been, but the nearest says "higher than me", so (6e-5, 0.037) is still open.
    evidence = Evidence()
    _runs(
        evidence,
        [
            (6e-5, "missed_target", Side.LOW, True, 0.37),
            (0.44, "plateau", Side.NEUTRAL, False, 0.37),
            (0.037, "stuck_constant", Side.NEUTRAL, False, 0.35),
        ],
    )
    choice = choose(
        POLICY,
        finding("stuck_constant"),
        evidence.observations[-1],
        evidence,
        {"lr": LR},
        {"lr": 0.037},
        Counter(),
    )
    assert choice.directions == {"lr": "down"} and "further down" in choice.why
    space = choice.space["lr"]
    assert space.low > 6e-5 and space.high < 0.037


def test_a_number_is_never_put_back_to_a_value_known_wrong():
    # The healthiest lr (within noise, the earliest) was firmly too low: it stays where it is
    # while init moves.
    evidence = Evidence()
    _runs(
        evidence,
        [
            (6e-5, "missed_target", Side.LOW, True, 0.36),
            (0.03, "missed_target", Side.NEUTRAL, False, 0.38),
        ],
        other={"init": "constant"},
    )
    knobs = {"lr": LR, "init": Knob(role="init", choices=["zeros", "constant", "default"])}
    choice = choose(
        POLICY,
        finding("dead_output"),
        evidence.observations[-1],
        evidence,
        knobs,
        {"lr": 0.03, "init": "constant"},
        Counter(),
    )
    assert choice.name == "reinit" and choice.reset == {}


def test_a_remedy_the_evidence_turned_around_is_named_for_the_way_it_moves():
    choice = next_move("missed_target", {"lr": 0.9}, {"lr": LR})  # at the top of the domain
    assert choice.name == "lr_raise" and choice.directions == {"lr": "down"}
    assert choice.named(POLICY) == "lr_cut"
    straight = next_move("divergence", {"lr": 0.01}, {"lr": LR})
    assert straight.named(POLICY) == straight.name == "lr_cut"


def decide(evidence, signature, config, knobs, turns=None):
    """The choice after the latest observation in ``evidence``."""
    latest = evidence.observations[-1]
    return choose(POLICY, finding(signature), latest, evidence, knobs, config, turns or Counter())


def test_a_cut_that_got_clearly_closer_is_repeated_at_its_own_size():
    evidence = Evidence()
    evidence.add(Observation(0, {"lr": 0.5}, False, "divergence", Side.HIGH, True, "", 1.0))
    evidence.add(
        Observation(1, {"lr": 0.05}, False, "divergence", Side.HIGH, True, "", 0.1, moved=("lr",))
    )
    choice = decide(evidence, "divergence", {"lr": 0.05}, {"lr": LR})
    # Not the far reach (0.01^2 x 0.05) that a second failure on this side would bring.
    assert choice.space["lr"].low == pytest.approx(0.05 * 0.01)
    # Had the cut not helped, the next one reaches further.
    flat = Evidence(evidence.observations[:1])
    flat.add(
        Observation(1, {"lr": 0.05}, False, "divergence", Side.HIGH, True, "", 1.0, moved=("lr",))
    )
    choice = decide(flat, "divergence", {"lr": 0.05}, {"lr": LR})
    assert choice.space["lr"].low == pytest.approx(0.05 * 0.01**2)


def test_a_value_below_a_firm_too_low_is_never_put_back():
    evidence = Evidence()
    for run, lr, signature, side, firm, health in [
        (0, 1e-6, "plateau", Side.NEUTRAL, False, 0.4),
        (1, 1e-4, "missed_target", Side.LOW, True, 0.38),
        (2, 0.05, "stuck_constant", Side.NEUTRAL, False, 0.38),
    ]:
        config = {"lr": lr, "warm": 50}
        moved = ("lr",) if run else ()
        evidence.add(
            Observation(
                run, config, False, signature, side, firm, "", health, moved=moved, basis="target"
            )
        )
    knobs = {"lr": LR, "warm": WARM}
    used = Counter({("stuck_constant", "lr_raise"): 1})  # the raises have had their turn
    choice = decide(evidence, "stuck_constant", {"lr": 0.05, "warm": 50}, knobs, used)
    assert choice.name == "warmup"
    # Moving lr did not help, but 1e-6 lies below 1e-4, which was firmly too low.
    assert "lr" not in choice.reset


def test_a_range_beyond_every_run_so_far_is_drawn_across_not_at_its_far_end(tmp_path):
    """TPE (with no good trials) draws where no run failed: on a range with every run on one
    side, that is always the far end. Such a range is drawn log-uniformly instead."""
    from rescue.search.study import RescueStudy

    knobs = {"lr": LR}
    low, high = 4e-5, 2e-3
    draws = []
    for seed in range(8):
        study = RescueStudy(f"sqlite:///{tmp_path / f's{seed}.db'}", "t", seed=seed)
        for lr, health in ((0.05, 0.3), (0.004, 0.06)):
            trial, _ = study.ask(knobs, {"lr": lr})
            study.finish(trial, TrialState.PRUNED, health, [1.0, health], {}, healthy=False)
        space = {"lr": FloatDistribution(low, high, log=True)}
        _, values = study.ask(knobs, {"lr": 0.004}, space)
        draws.append(values["lr"])
    assert all(low <= d <= high for d in draws)
    near_far_end = [d for d in draws if d < low * 1.5]
    assert len(near_far_end) <= 2, sorted(draws)
