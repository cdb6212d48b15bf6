"""What the runs so far taught about each knob value.

After every run (a rescue's, or a sweep's trial) :func:`observe` makes an :class:`Observation`:
the run's knob values, and which way it says the step size was wrong (its :class:`Side`):

- *too high*: non-finite values, an explosion, divergence, oscillation, large updates, a run
  that blew up within its first reports and stayed high, or one that started far above a run
  of the same model with smaller steps (or, as a hint that bounds nothing, one getting steadily
  worse at its end);
- *too low*: a plateau or a missed target while the run was still improving (firmly only when
  on pace to meet its target);
- *neutral*: anything else (a collapse, a dead head, a run stuck without a trend).

A knob's role says how its value relates to the step size (a larger learning rate, momentum or
clipping threshold takes larger steps; a longer warm-up or a larger batch smaller ones), so a
run's side becomes a verdict on each knob value. For a numeric knob the firm verdicts make a
*bracket*: the highest value known to be too low and the lowest known to be too high, among
the runs whose other knobs held the values they hold now (a bracket on the learning rate does
not survive a change of initialisation). Categorical knobs remember which choices were run.

>>> obs = Observation(0, {"lr": 1.0}, healthy=False, signature="divergence",
...                   side=Side.HIGH, firm=True, why="divergence")
>>> evidence = Evidence([obs])
>>> evidence.bracket("lr", {"lr": 0.1}, {"lr": 1})
(None, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from rescue.detectors.course import Course, course_of
from rescue.detectors.health import health_basis

if TYPE_CHECKING:
    from rescue.detectors.findings import Finding
    from rescue.detectors.stream import MetricStream
    from rescue.policy.rules import Policy

# A run whose watched loss stayed this many times above the first value another run of the same
# model reported had blown up before its own first report.
BLOWN_UP = 3.0


class Side(str, Enum):
    """Which way a run says the step size was wrong."""

    HIGH = "too_high"
    LOW = "too_low"
    NEUTRAL = "neutral"


Verdict = Literal["too_high", "too_low", "failed", "healthy"]


@dataclass(frozen=True)
class Observation:
    """One finished run, as evidence. ``config`` holds its knob values; ``firm`` says whether
    its side may bound a bracket (a side read from a curve's shape only steers the next move).
    ``metric``, ``first`` and ``level``: its watched metric's first value and final level."""

    run: int
    config: dict[str, Any]
    healthy: bool
    signature: str | None
    side: Side
    firm: bool
    why: str
    health: float | None = None
    metric: str | None = None
    first: float | None = None
    level: float | None = None
    basis: str | None = None  # "target": health from the success targets; "loss": from a loss
    moved: tuple[str, ...] = ()  # the knobs the move that led to this run drew anew
    lower: bool | None = None  # whether lower is better for the watched metric

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["side"] = self.side.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["side"] = Side(known["side"])
        known["moved"] = tuple(known.get("moved") or ())
        for key in ("health", "first", "level"):  # report.json writes non-finite as strings
            if isinstance(known.get(key), str):
                known[key] = float(known[key])
        return cls(**known)


def read_side(
    spec: str, firm: bool, signature: str, course: Course | None
) -> tuple[Side, bool, str]:
    """The side of a run diagnosed as ``signature``, whose rule says ``spec`` (``too_high``,
    ``too_low``, ``neutral`` or ``auto``: read it off the watched metric's course)."""
    if spec == "too_high":
        return Side.HIGH, firm, f"{signature}: the steps were too large"
    if spec == "too_low":
        return Side.LOW, firm, f"{signature}: the steps were too small"
    if spec == "auto" and course is not None:
        if course.early_spike:
            return (
                Side.HIGH,
                True,
                f"{signature}: {course.metric} blew up within its first reports "
                f"({course.first:.4g} -> above {2 * course.first:.4g}) and stayed high",
            )
        if course.improving:
            why = (
                f"{signature}: {course.metric} was still improving at the end "
                f"({course.trend:.2g} decades per value)"
            )
            if course.on_pace:
                return Side.LOW, True, why
            # A creep far from the target: too small a step is one reason among others (a run
            # settled after too large ones creeps as well), so it steers but bounds nothing.
            return Side.LOW, False, f"{why}, too slowly to reach its target"
        if course.degraded:  # training left it worse than it started: the steps hurt
            return (
                Side.HIGH,
                False,
                f"{signature}: {course.metric} ended worse than it started "
                f"({course.first:.4g} -> {course.level:.4g})",
            )
        if course.worsening:  # climbing away from its best: the run is diverging slowly
            return (
                Side.HIGH,
                False,
                f"{signature}: {course.metric} was getting worse at the end "
                f"({course.best:.4g} at best, {course.level:.4g} at the end)",
            )
    return Side.NEUTRAL, False, f"{signature}: says nothing about the step size"


def observe(
    policy: Policy,
    run: int,
    knob_values: Mapping[str, Any],
    verdict: Finding | None,
    met_success: bool,
    health: float | None,
    stream: MetricStream,
    from_checkpoint: bool = False,
    moved: tuple[str, ...] = (),
) -> Observation:
    """A finished run as evidence: which way it says the step size was wrong, from its verdict
    and the course of its watched metric, for a rescue's run and a sweep's trial alike. A run
    that went on from an earlier run's checkpoint inherits that run's weights, so its failure
    may not be its knob values' doing: its side steers but bounds nothing."""
    course = course_of(stream)
    healthy = verdict is None and met_success
    if verdict is not None:
        rule = policy.rules.get(verdict.signature)
        side = read_side(
            rule.side if rule else "neutral",
            rule.firm if rule else False,
            verdict.signature,
            course,
        )
    elif not healthy:  # a miss no detector named: the course alone says which way
        side = read_side("auto", True, "missed success", course)
    else:
        side = read_side("neutral", False, "healthy", course)
    return Observation(
        run=run,
        config=dict(knob_values),
        healthy=healthy,
        signature=verdict.signature if verdict else None,
        side=side[0],
        firm=side[1] and not from_checkpoint,
        why=side[2],
        health=health,
        metric=course.metric if course else None,
        first=course.first if course else None,
        level=course.level if course else None,
        basis=health_basis(stream),
        moved=moved,
        lower=course.lower_is_better if course else None,
    )


@dataclass
class Evidence:
    """Every run's observation, in order. ``since``: where the line of runs being rescued
    starts, each run after it a move from the one before; the runs before it (a sweep's other
    trials) bound and bracket the knobs, but no move led from them."""

    observations: list[Observation] = field(default_factory=list)
    since: int = 0

    @property
    def line(self) -> list[Observation]:
        """The line of runs being rescued, the first one as its user (or its sweep) set it."""
        return self.observations[self.since :]

    def add(
        self, observation: Observation, polarities: Mapping[str, int] | None = None
    ) -> Observation:
        """Record ``observation``, read against the runs before it (see :meth:`_blown_up`);
        ``polarities``: each knob's step polarity, as in :meth:`verdict`."""
        observation = self._blown_up(observation, polarities or {})
        self.observations.append(observation)
        return observation

    def _blown_up(self, obs: Observation, polarities: Mapping[str, int]) -> Observation:
        """A run that started, or stayed, far above the first value reported by another run
        of the same model with smaller steps had blown up before its own first report: logging
        every N steps hides the blow-up, but not the level a model with gentler steps started
        from. (Against a run with larger steps, a higher start is slower learning.) A run that
        started there and was improving at its end was recovering from the blow-up, not
        stepping too timidly: that is firm. One that only stayed there says so less surely."""
        if obs.side is Side.HIGH or obs.healthy or not obs.lower or obs.first is None:
            return obs  # (a loss: a score has no "untrained level" to blow up past)
        firsts = [
            o.first
            for o in self.observations
            if o.metric == obs.metric
            and o.first is not None
            and o.first > 0
            and _gentler(o.config, obs.config, polarities)
        ]
        if not firsts:
            return obs
        start = min(firsts)
        if obs.first > BLOWN_UP * start:
            why = (
                f"{obs.metric} started at {obs.first:.4g}, over {BLOWN_UP:g}x the {start:.4g} "
                f"another run of the same model started from: it had blown up before its first "
                f"report (not {obs.why})"
            )
            return replace(obs, side=Side.HIGH, firm=True, why=why)
        if obs.side is Side.NEUTRAL and obs.level is not None and obs.level > BLOWN_UP * start:
            why = (
                f"{obs.why}; but {obs.metric} stayed at {obs.level:.4g}, over {BLOWN_UP:g}x the "
                f"{start:.4g} another run started from: it had blown up"
            )
            return replace(obs, side=Side.HIGH, firm=False, why=why)
        return obs

    def verdict(self, obs: Observation, name: str, polarity: int) -> Verdict:
        """What ``obs`` says of its value of knob ``name`` whose role has step ``polarity``
        (+1: larger values take larger steps; -1: smaller; 0: unrelated)."""
        if obs.healthy:
            return "healthy"
        if obs.side is Side.NEUTRAL or polarity == 0:
            return "failed"
        high = (obs.side is Side.HIGH) == (polarity > 0)
        return "too_high" if high else "too_low"

    def relevant(self, name: str, config: Mapping[str, Any]) -> list[Observation]:
        """The runs whose other knobs held the values ``config`` holds now."""
        return [
            o
            for o in self.observations
            if all(o.config.get(k) == v for k, v in config.items() if k != name)
        ]

    def bracket(
        self, name: str, config: Mapping[str, Any], polarities: Mapping[str, int]
    ) -> tuple[float | None, float | None]:
        """(the highest value known too low, the lowest known too high) for knob ``name``,
        from firm verdicts of the relevant runs; contradictory evidence (a value too low above
        one too high, as noise can give) keeps the too-high side, the firmer of the two."""
        polarity = polarities.get(name, 0)
        low: float | None = None
        high: float | None = None
        for obs in self.relevant(name, config):
            value = obs.config.get(name)
            if not obs.firm or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            verdict = self.verdict(obs, name, polarity)
            if verdict == "too_high":
                high = value if high is None else min(high, value)
            elif verdict == "too_low":
                low = value if low is None else max(low, value)
        if low is not None and high is not None and low >= high:
            low = None
        return low, high

    def failures_on(
        self, name: str, side: Verdict, config: Mapping[str, Any], polarity: int
    ) -> int:
        """How many relevant runs found knob ``name`` ``side`` (firmly): later moves that way
        reach further."""
        return sum(
            1
            for o in self.relevant(name, config)
            if o.firm and self.verdict(o, name, polarity) == side
        )

    def last_move(self) -> tuple[str, float, float] | None:
        """(knob, value before, value after) when the move that led to the latest run drew
        exactly one number anew (a knob put back beside it does not count): a move whose
        effect can be read."""
        line = self.line
        if len(line) < 2:
            return None
        latest = line[-1]
        before, after = line[-2].config, latest.config
        changed = list(latest.moved) or [k for k in after if after[k] != before.get(k)]
        if len(changed) != 1 or not _number(after.get(changed[0])):
            return None
        name = changed[0]
        if not _number(before.get(name)) or before[name] == after[name]:
            return None
        return name, float(before[name]), float(after[name])

    def change(self) -> float | None:
        """How much healthier the latest run was than the one before (negative: better, in
        decades), or None when the two cannot be compared. A run stopped by a firm failure
        before its targets were reported is worse than one that ran to its end."""
        line = self.line
        if len(line) < 2:
            return None
        earlier, latest = line[-2], line[-1]
        both = earlier.health is not None and latest.health is not None
        if both and earlier.basis == latest.basis:
            return latest.health - earlier.health
        failed = [o.firm and o.side is not Side.NEUTRAL for o in (earlier, latest)]
        if failed == [False, True]:
            return math.inf
        if failed == [True, False]:
            return -math.inf
        return None

    def moves_in_a_row(self, name: str, direction: str) -> int:
        """How many of the latest runs moved knob ``name`` in ``direction``, one after the
        other: a move that keeps not reaching the fix reaches further."""
        count = 0
        line = self.line
        for before, after in zip(line[-2::-1], line[::-1]):
            a, b = before.config.get(name), after.config.get(name)
            if not (_number(a) and _number(b)) or a == b:
                break
            if (b > a) != (direction == "up"):
                break
            count += 1
        return count

    def tried(self, name: str) -> list[Any]:
        """The values of knob ``name`` that ran, in order."""
        return [o.config[name] for o in self.observations if name in o.config]

    def ran(self, config: Mapping[str, Any]) -> bool:
        return any(o.config == dict(config) for o in self.observations)

    def per_knob(self, polarities: Mapping[str, int]) -> dict[str, list[dict[str, Any]]]:
        """For report.json: every value each knob took, and what it led to."""
        table: dict[str, list[dict[str, Any]]] = {}
        for obs in self.observations:
            for name, value in obs.config.items():
                table.setdefault(name, []).append(
                    {
                        "run": obs.run,
                        "value": value,
                        "verdict": self.verdict(obs, name, polarities.get(name, 0)),
                        "firm": obs.firm,
                        "why": obs.why,
                    }
                )
        return table

    def lessons(
        self, config: Mapping[str, Any], polarities: Mapping[str, int], categorical: Iterable[str]
    ) -> dict[str, Any]:
        """report.json's ``lessons``: the brackets around ``config`` and the failed choices."""
        upper, lower, excluded = {}, {}, {}
        categorical = set(categorical)
        for name in config:
            if name in categorical:
                failed = {str(o.config[name]) for o in self.observations if not o.healthy}
                if failed:
                    excluded[name] = sorted(failed)
                continue
            low, high = self.bracket(name, config, polarities)
            if low is not None:
                lower[name] = low
            if high is not None:
                upper[name] = high
        return {"upper": upper, "lower": lower, "excluded": excluded}


def _gentler(a: Mapping[str, Any], b: Mapping[str, Any], polarities: Mapping[str, int]) -> bool:
    """Whether config ``a`` is ``b``'s model, data and loss with steps no larger: every knob
    unrelated to the step size holds the same value, and every step-size knob that differs is
    on the smaller-step side in ``a``."""
    for name, value in b.items():
        other, polarity = a.get(name), polarities.get(name, 0)
        if other == value:
            continue
        if not polarity or not (_number(other) and _number(value)):
            return False
        if (value - other) * polarity < 0:
            return False
    return True


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
