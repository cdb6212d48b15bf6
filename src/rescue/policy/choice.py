"""The remedy for a finding, and the ranges the next run's knob values are drawn from.

The signature's remedies in the policy are the prior: they are tried first, in order, each
for its ``tries`` turns. The evidence decides the rest:

- which way a number moves: a run that was too high moves a step-size knob down whatever the
  remedy says (a learning-rate raise after a blow-up would be wrong);
- how far: the range spans the whole plausible region, between the brackets of the evidence
  and the domain, log-uniform on a log domain; on a side with no evidence yet it reaches as far
  as the remedy's ``scale`` allows, further with every run that failed on that side;
- what is left: a knob whose region is empty, or a category whose choices have all run, is
  exhausted, never an error.

What the last move did steers the next before any list: when the run before changed one
number and the run did not fail in a way that says which way to go, a move that helped (or
changed nothing) goes on in the same direction, reaching further, and a move that made things
worse is reversed, from the value before it. A number moved without helping is put back when
another knob moves next.

When the signature's remedies are used up or have no knob, the other declared knobs get their
turn, in the order of the policy's ``fallback`` list, and then every knob at once; "cannot
remedy" is said only when no declared knob is left to move.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from rescue.config import Knob
from rescue.detectors.findings import Finding
from rescue.policy.evidence import Evidence, Observation, Side
from rescue.policy.remedies import Direction, Remedy

if TYPE_CHECKING:
    from rescue.policy.rules import Policy

MIN_LOG_WIDTH = math.log(1.05)  # a log range narrower than 5% is exhausted
MIN_WIDTH = 0.01  # a linear range narrower than 1% of the domain is exhausted
MARGIN = 0.05  # health differences below this (in decades) are noise
EXTREME = 0.05  # a value this close (a fraction of the domain) to one end of it is extreme
EXPLORE = "explore"


@dataclass(frozen=True)
class Choice:
    """The move for a finding: the remedy (None when every knob is explored), the
    distributions of the knobs it moves, and why, in one line."""

    name: str
    space: dict[str, BaseDistribution]
    why: str
    remedy: Remedy | None = None
    directions: dict[str, Direction] = field(default_factory=dict)
    reset: dict[str, Any] = field(default_factory=dict)  # knobs put back before the next run

    @property
    def restart(self) -> str:
        return self.remedy.restart if self.remedy is not None else "fresh"

    def named(self, policy: Policy) -> str:
        """The name the move reads as: a remedy the evidence turned the other way is named
        by the policy's remedy for that role and direction (an ``lr_raise`` turned down reads
        ``lr_cut``); turns are still counted under :attr:`name`."""
        directions = set(self.directions.values())
        if self.remedy is None or self.remedy.direction is None or len(directions) != 1:
            return self.name
        if self.remedy.direction in directions:
            return self.name
        (direction,) = directions
        for name, remedy in policy.remedies.items():
            if remedy.role == self.remedy.role and remedy.direction == direction:
                return name
        return self.name


@dataclass(frozen=True)
class CannotRemedy:
    reason: str


def choose(
    policy: Policy,
    finding: Finding,
    observation: Observation,
    evidence: Evidence,
    knobs: Mapping[str, Knob],
    config: Mapping[str, Any],
    turns: Counter[tuple[str, str]],
) -> Choice | CannotRemedy:
    """The next move after a run diagnosed with ``finding`` (``observation`` is that run's
    evidence, already in ``evidence``); ``turns`` counts the remedies chosen per signature."""
    signature = finding.signature
    rule = policy.rules.get(signature)
    chain = list(rule.remedies) if rule else []
    if not chain:  # the policy says nothing is to be done (a crash, by default)
        return CannotRemedy(f"the policy has no remedy for {signature}")
    mover = _Mover(policy, observation, evidence, knobs, config)
    lead = mover.follow_up(chain) or mover.extreme(chain)
    if lead is not None:
        return lead
    # The other declared knobs' turn: remedies for roles the signature's own list does not
    # move (its own remedy for a role is the one that role moves by).
    chain_roles = {policy.remedies[n].role for n in chain}
    fallback = [
        n
        for n in policy.fallback
        if policy.search.beyond_chain and policy.remedies[n].role not in chain_roles
    ]
    for patient in (True, False):
        for name in chain + fallback:
            remedy = policy.remedies[name]
            mover.quiet = name not in chain  # a fallback without a knob is not worth a word
            used_up = turns[(signature, name)] >= remedy.tries
            if remedy.role is None:  # nothing to move (a retry): its tries are a cap
                if not used_up:
                    return Choice(name, {}, f"{name}: run again as it was", remedy)
                mover.why_not.append(f"{name} tried {remedy.tries}x already")
                continue
            if patient and used_up:
                continue
            choice = mover.apply(remedy)
            if choice is not None:
                return mover.undoing(choice)
    if policy.search.beyond_chain:
        choice = mover.explore()
        if choice is not None:
            return choice
    reasons = "; ".join(dict.fromkeys(mover.why_not)) or "no remedy applies"
    return CannotRemedy(f"cannot remedy {signature}: {reasons}")


class _Mover:
    """Turns remedies into ranges for one decision."""

    def __init__(
        self,
        policy: Policy,
        observation: Observation,
        evidence: Evidence,
        knobs: Mapping[str, Knob],
        config: Mapping[str, Any],
    ) -> None:
        self.policy, self.observation, self.evidence = policy, observation, evidence
        self.knobs, self.config = knobs, config
        self.polarities = {n: policy.polarity(k.role) for n, k in knobs.items()}
        self.why_not: list[str] = []
        self.quiet = False

    def follow_up(self, chain: list[str]) -> Choice | None:
        """The last move's knob again, when the last run says nothing firm about the step
        size: on in the same direction if it helped (or changed nothing, where the domain leans
        that way too), back the other way if it made things worse."""
        side = self.observation.side
        if self.observation.firm and side is not Side.NEUTRAL:
            return None  # a firm side brackets the knobs: the remedies follow it
        move, change = self.evidence.last_move(), self.evidence.change()
        if move is None or change is None or move[0] not in self.knobs:
            return None
        name, before, after = move
        knob = self.knobs[name]
        if knob.is_categorical:
            return None
        went: Direction = "up" if after > before else "down"
        if change > MARGIN:  # worse: the other way, from the value before unless bounded
            direction = _opposite(went)
            if self._tried_beyond(name, before, direction):
                return None  # both sides of it are worse: this knob is not the cause
            low, high = self.evidence.bracket(name, self.config, self.polarities)
            bounded = low is not None if direction == "down" else high is not None
            origin = after if bounded else before
            how = f"{name} {before:.4g} -> {after:.4g} made it worse: {direction} from {origin:.4g}"
        else:
            best = change < -MARGIN and self._healthiest(name) == after
            if not best and _lean(knob, after) != went:
                return None  # not the best run so far, and nothing says to go further
            if self._tried_beyond(name, after, went):
                return None  # further that way has run already
            direction, origin = went, after
            how = f"{name} {before:.4g} -> {after:.4g} did not get there: further {direction}"
        if side is not Side.NEUTRAL and self.polarities[name]:  # a shape's hint wins
            hinted = _direction(None, self.polarities[name], side, knob, after) or direction
            if hinted != direction or origin != after:
                how = f"{how}; but the run reads {side.value}: {hinted} from {after:.4g}"
            direction, origin = hinted, after
        remedy = self._remedy_for(knob.role, chain)
        if remedy is None or not _may_go(remedy, direction):
            return None
        dist = self.region(name, knob, direction, remedy, origin)
        if dist is None:
            return None
        return Choice(remedy.name, {name: dist}, how, remedy, {name: direction})

    def extreme(self, chain: list[str]) -> Choice | None:
        """A step-size knob at the very end of its declared domain (momentum 0.999 of
        [0, 0.999]) is the first suspect, moved inward, when the run's side does not point
        the other way and the signature's first remedy would move another role."""
        first = self.policy.remedies[chain[0]].role if chain else None
        suspects = []
        for name, knob in self.knobs.items():
            polarity = self.polarities[name]
            if knob.is_categorical or not polarity or knob.role == first:
                continue
            value = self.config[name]
            where = _position(knob, value)
            if where is None or EXTREME < where < 1 - EXTREME or value == 0:
                continue  # (0 is a knob turned off, warm-up or clipping: not an extreme)
            if self.evidence.line[0].config.get(name) != value:
                continue  # a value rescue chose is no suspect: the user's own setting is
            inward: Direction = "down" if where >= 1 - EXTREME else "up"
            side = self.observation.side
            if side is not Side.NEUTRAL and _direction(None, polarity, side, knob, 0) != inward:
                continue
            suspects.append((min(where, 1 - where), name, inward))
        for _, name, inward in sorted(suspects):
            knob = self.knobs[name]
            remedy = self._remedy_for(knob.role, chain)
            if remedy is None or not _may_go(remedy, inward):
                continue
            dist = self.region(name, knob, inward, remedy)
            if dist is not None:
                why = f"{remedy.name} on {name}: {self.config[name]:g} is at the end of its domain"
                return Choice(remedy.name, {name: dist}, why, remedy, {name: inward})
        return None

    def _tried_beyond(self, name: str, value: float, direction: Direction) -> bool:
        """Whether a run with the other knobs as now had ``name`` beyond ``value`` that way,
        unless the nearest such run firmly points back (a value too low below a move down):
        the stretch between the two has not run yet."""
        beyond = [
            (abs(other - value), obs)
            for obs in self.evidence.relevant(name, self.config)
            if isinstance(other := obs.config.get(name), (int, float))
            and (other < value if direction == "down" else other > value)
        ]
        if not beyond:
            return False
        nearest = min(beyond, key=lambda pair: pair[0])[1]
        back = "too_low" if (direction == "down") == (self.polarities[name] >= 0) else "too_high"
        return not (
            nearest.firm and self.evidence.verdict(nearest, name, self.polarities[name]) == back
        )

    def undoing(self, choice: Choice) -> Choice:
        """``choice``, putting back the number the last move changed when that did not lead
        to the healthiest run so far and ``choice`` moves other knobs: to its value in the
        healthiest run."""
        move = self.evidence.last_move()
        if move is None or move[0] in choice.space:
            return choice
        name = move[0]
        best = self._healthiest(name)
        if best is None or best == self.config[name] or self._known_wrong(name, best):
            return choice
        value = int(best) if isinstance(self.config[name], int) else best
        why = f"{choice.why}; {name} back to {best:.4g} (moving it did not help)"
        return replace(choice, reset={name: value}, why=why)

    def _known_wrong(self, name: str, value: Any) -> bool:
        """Whether a run with the other knobs as now found ``value`` firmly too high or too
        low, or the evidence's bracket lies wholly on one side of it (a learning rate below
        one that was firmly too low): not a value to put back."""
        polarity = self.polarities[name]
        too_low, too_high = self.evidence.bracket(name, self.config, self.polarities)
        if (too_low is not None and value <= too_low) or (
            too_high is not None and value >= too_high
        ):
            return True
        return any(
            obs.firm
            and obs.config.get(name) == value
            and self.evidence.verdict(obs, name, polarity) in ("too_high", "too_low")
            for obs in self.evidence.relevant(name, self.config)
        )

    def _healthiest(self, name: str) -> Any:
        """The value of ``name`` in the healthiest run with the other knobs as now (a health
        read off a loss ranks below one read off the targets), the earliest among runs within
        the noise of the best."""
        runs = [o for o in self.evidence.relevant(name, self.config) if o.health is not None]
        if not runs:
            return None
        top = min(_rank(o) for o in runs)
        for obs in runs:  # in run order: the earliest as good as the best
            rank = _rank(obs)
            if rank[0] == top[0] and rank[1] <= top[1] + MARGIN:
                return obs.config[name]
        return None

    def _remedy_for(self, role: str, chain: list[str]) -> Remedy | None:
        """The remedy that moves knobs of ``role``: the signature's own, else the fallback's,
        else any."""
        names = [*chain, *self.policy.fallback, *self.policy.remedies]
        return next(
            (self.policy.remedies[n] for n in names if self.policy.remedies[n].role == role), None
        )

    def apply(self, remedy: Remedy) -> Choice | None:
        mine = {n: k for n, k in self.knobs.items() if k.role == remedy.role}
        if not mine:
            if not self.quiet:
                self.why_not.append(f"no knob with role {remedy.role} for {remedy.name}")
            return None
        space: dict[str, BaseDistribution] = {}
        directions: dict[str, Direction] = {}
        for name, knob in mine.items():
            if knob.is_categorical:
                dist = _choices(name, knob, self.config[name], remedy, self.evidence)
            else:
                direction = _direction(
                    remedy, self.polarities[name], self.observation.side, knob, self.config[name]
                )
                if direction is not None and not _may_go(remedy, direction):
                    direction = None
                dist = None if direction is None else self.region(name, knob, direction, remedy)
                if dist is not None and direction is not None:
                    directions[name] = direction
            if dist is not None:
                space[name] = dist
        if not space:
            self.why_not.append(f"{remedy.name}: {', '.join(mine)} has no value left to try")
            return None
        why = f"{remedy.name} on {', '.join(space)}"
        turned = [
            (n, d)
            for n, d in directions.items()
            if remedy.direction and d != remedy.direction and self.config[n] > self.knobs[n].low
        ]
        if turned:
            name, direction = turned[0]
            because = self.observation.why
            if self.observation.side is Side.NEUTRAL:  # the domain's lean turned it
                end = "top" if direction == "down" else "bottom"
                because = f"{because}; {self.config[name]:g} is in the {end} third of its domain"
            why += f" (turned {direction}: {because})"
        return Choice(remedy.name, space, why, remedy, directions)

    def region(
        self,
        name: str,
        knob: Knob,
        direction: Direction,
        remedy: Remedy,
        origin: float | None = None,
    ) -> BaseDistribution | None:
        """The plausible values of a number moved in ``direction`` from ``origin`` (its current
        value by default): between the bracket of the evidence and the domain; on a side
        without evidence, as far as the remedy's window reaches, further with every failure on
        that side and every move in a row that way."""
        assert knob.low is not None and knob.high is not None
        current = self.config[name]
        value = current if origin is None else origin
        polarity = self.polarities[name]
        too_low, too_high = self.evidence.bracket(name, self.config, self.polarities)
        low, high = self._inside(knob, too_low, too_high)
        if remedy.to is not None:
            end = knob.low if direction == "down" else knob.high
            low = high = end if low <= end <= high and end != value else math.nan
        elif remedy.span is not None and value <= knob.low:
            a, b = _span(knob, remedy.span)
            low, high = max(low, a), min(high, b)
        else:
            window = remedy.window(direction)
            side = "too_high" if (direction == "down") == (polarity >= 0) else "too_low"
            failures = self.evidence.failures_on(name, side, self.config, polarity)
            in_a_row = self.evidence.moves_in_a_row(name, direction)
            growth = 2 ** max(failures - 1, in_a_row, 0)
            if self._closer(name, direction):
                growth = 1  # the last step this way got clearly closer: the same size again
            # An open side (no evidence beyond the current value) is the remedy's window, its
            # far end reaching further with each failure there; a bracketed side is the whole
            # bracket, so that a narrow one is bisected rather than skipped.
            open_side = window is not None and value > 0
            if direction == "down":
                high = min(high, _below(value))
                if too_low is None and open_side:
                    assert window is not None
                    low = max(low, value * window[0] ** growth)
                    high = min(high, value * window[1])
            else:
                low = max(low, _above(value))
                if too_high is None and open_side:
                    assert window is not None
                    high = min(high, value * window[1] ** growth)
                    low = max(low, value * window[0])
        failed = [v for v in (too_low, too_high, value) if v is not None]
        low, high = _clear_of(knob, low, high, failed, self.policy.search.margin)
        return _distribution(knob, current, low, high)

    def _closer(self, name: str, direction: Direction) -> bool:
        """Whether the latest run moved ``name`` in ``direction`` and came out clearly
        healthier than the run before it."""
        move, change = self.evidence.last_move(), self.evidence.change()
        if move is None or change is None or move[0] != name or change >= -MARGIN:
            return False
        return (move[2] > move[1]) == (direction == "up")

    def explore(self) -> Choice | None:
        """Every knob at once, each inside what the evidence leaves of its domain."""
        space: dict[str, BaseDistribution] = {}
        for name, knob in self.knobs.items():
            if knob.is_categorical:
                ran = {str(v) for v in self.evidence.tried(name)}
                if any(str(c) not in ran for c in knob.choices):
                    space[name] = CategoricalDistribution(list(knob.choices))
                continue
            too_low, too_high = self.evidence.bracket(name, self.config, self.polarities)
            low, high = self._inside(knob, too_low, too_high)
            dist = _distribution(knob, self.config[name], low, high)
            if dist is not None:
                space[name] = dist
        if not space:
            return None
        return Choice(EXPLORE, space, f"every knob at once: {', '.join(space)}")

    @staticmethod
    def _inside(knob: Knob, too_low: float | None, too_high: float | None) -> tuple[float, float]:
        assert knob.low is not None and knob.high is not None
        low = knob.low if too_low is None else max(knob.low, _above(too_low))
        high = knob.high if too_high is None else min(knob.high, _below(too_high))
        return low, high


def _direction(
    remedy: Remedy | None, polarity: int, side: Side, knob: Knob, value: Any
) -> Direction | None:
    """The evidence first: a run that was too high moves a step-size knob toward smaller
    steps. Without a side, a step-size knob near an end of its declared domain moves toward
    the middle (the user's domain says where plausible values lie); else the remedy's own
    direction."""
    if side is not Side.NEUTRAL and polarity:
        return "down" if (side is Side.HIGH) == (polarity > 0) else "up"
    lean = _lean(knob, value) if polarity else None
    if lean is not None:
        return lean
    return remedy.direction if remedy is not None else None


def _lean(knob: Knob, value: Any) -> Direction | None:
    """``up`` in the lowest third of the domain (log scale on a log domain), ``down`` in the
    highest, None in the middle."""
    where = _position(knob, value)
    if where is None:
        return None
    return "up" if where < 1 / 3 else "down" if where > 2 / 3 else None


def _position(knob: Knob, value: Any) -> float | None:
    """Where ``value`` lies in the knob's domain, 0 at its low end and 1 at its high end (on
    the log scale of a log domain)."""
    if knob.is_categorical or not isinstance(value, (int, float)):
        return None
    assert knob.low is not None and knob.high is not None
    low, high, x = knob.low, knob.high, float(value)
    if knob.log and x > 0:
        low, high, x = math.log(low), math.log(high), math.log(x)
    return (x - low) / (high - low)


def _rank(obs: Observation) -> tuple[bool, float]:
    """Healthier first: a health read off the targets before one read off a loss."""
    return obs.basis != "target", obs.health if obs.health is not None else math.inf


def _may_go(remedy: Remedy, direction: Direction) -> bool:
    """Whether ``remedy`` may move its knob in ``direction``: only its own way if it is not
    ``reversible`` (a momentum cut never turns into a raise toward 1)."""
    return remedy.reversible or remedy.direction in (None, direction)


def _opposite(direction: Direction) -> Direction:
    return "down" if direction == "up" else "up"


def _choices(
    name: str, knob: Knob, current: Any, remedy: Remedy, evidence: Evidence
) -> CategoricalDistribution | None:
    """Choices that have not run yet, the policy's preferred ones first."""
    ran = set(map(str, evidence.tried(name))) | {str(current)}
    swap = remedy.swap or {}
    preferred = list(swap.get(str(current), swap.get("*", [])))
    order = [c for c in preferred if c in knob.choices] + list(knob.choices)
    fresh = [c for c in dict.fromkeys(order) if str(c) not in ran]
    return CategoricalDistribution(fresh) if fresh else None


def _distribution(knob: Knob, value: Any, low: float, high: float) -> BaseDistribution | None:
    """The range as an Optuna distribution, or None when it is empty or too narrow to hold a
    value other than the current one (the knob is exhausted)."""
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        lo, hi = math.ceil(low), math.floor(high)
        if lo > hi or lo == hi == value:
            return None
        return IntDistribution(lo, hi, log=knob.log and lo > 0 and lo < hi)
    if low == high:
        return None if low == value else FloatDistribution(low, high)
    if knob.log and low > 0:
        if math.log(high / low) < MIN_LOG_WIDTH:
            return None
        return FloatDistribution(low, high, log=True)
    assert knob.low is not None and knob.high is not None
    if high - low < MIN_WIDTH * (knob.high - knob.low):
        return None
    return FloatDistribution(low, high)


def _clear_of(
    knob: Knob, low: float, high: float, failed: list[float], margin: float
) -> tuple[float, float]:
    """The range without ``margin`` of its width (log width on a log domain) next to each end
    that is a value known to fail: a fix is rarely a hair's breadth from a failure."""
    if not margin or not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        return low, high
    log = knob.log and low > 0
    a, b = (math.log(low), math.log(high)) if log else (low, high)
    cut = margin * (b - a)

    def at_failure(end: float) -> bool:
        return any(math.isclose(end, v, rel_tol=1e-5, abs_tol=1e-11) for v in failed)

    trim_low, trim_high = at_failure(low), at_failure(high)
    if not (trim_low or trim_high):
        return low, high
    a, b = a + cut * trim_low, b - cut * trim_high
    new_low, new_high = (math.exp(a), math.exp(b)) if log else (a, b)
    return (new_low if trim_low else low), (new_high if trim_high else high)


def _span(knob: Knob, span: tuple[float, float]) -> tuple[float, float]:
    assert knob.low is not None and knob.high is not None
    if knob.log:
        a, b = math.log(knob.low), math.log(knob.high)
        return math.exp(a + span[0] * (b - a)), math.exp(a + span[1] * (b - a))
    width = knob.high - knob.low
    return knob.low + span[0] * width, knob.low + span[1] * width


def _below(value: float) -> float:
    """Just below ``value``: a value known to fail is never drawn again."""
    return value - max(abs(value) * 1e-6, 1e-12)


def _above(value: float) -> float:
    return value + max(abs(value) * 1e-6, 1e-12)
