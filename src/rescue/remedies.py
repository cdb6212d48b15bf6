"""Remedies: what a restart changes, as the range each knob of the remedy's role may move in.

A remedy turns into Optuna distributions (:meth:`Remedy.search_space`); Optuna then picks the
new values inside them. :class:`Lessons` remembers which values already failed, so that every
later range excludes them (e.g. every learning rate at or above one that diverged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rescue.config import Knob


class Remedy(BaseModel):
    """One entry under ``remedies:`` in a policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    role: str | None
    scale: tuple[float, float] | None = None
    span: tuple[float, float] | None = None
    to: Literal["low", "high"] | None = None
    swap: dict[str, list[Any]] | None = None
    restart: Literal["fresh", "checkpoint"] = "fresh"
    tries: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> Remedy:
        for key in ("scale", "span"):
            pair = getattr(self, key)
            if pair is not None and not (0 <= pair[0] <= pair[1]):
                raise ValueError(f"{key} must be [a, b] with 0 <= a <= b, got {list(pair)}")
        if self.role is not None and not any((self.scale, self.span, self.to, self.swap)):
            raise ValueError("a change: scale, span, to or swap")
        return self

    @property
    def direction(self) -> Literal["down", "up"] | None:
        """Which way the remedy moves a number: what it implies about the value that failed."""
        if self.to is not None:
            return "down" if self.to == "low" else "up"
        if self.scale is not None and self.scale[1] < 1:
            return "down"
        if self.scale is not None and self.scale[0] > 1:
            return "up"
        return None

    def search_space(
        self, knobs: dict[str, Knob], config: dict[str, Any], lessons: Lessons
    ) -> dict[str, BaseDistribution]:
        """Distributions for the knobs this remedy changes; empty if it can change none."""
        space: dict[str, BaseDistribution] = {}
        for name, knob in knobs.items():
            if knob.role != self.role:
                continue
            if knob.is_categorical:
                choices = self._choices(name, knob, config[name], lessons)
                dist: BaseDistribution | None = (
                    CategoricalDistribution(choices) if choices else None
                )
            else:
                dist = self._number_range(name, knob, config[name], lessons)
            if dist is not None:
                space[name] = dist
        return space

    def _choices(self, name: str, knob: Knob, current: Any, lessons: Lessons) -> list[Any]:
        failed = lessons.excluded.get(name, set())
        fresh = [c for c in knob.choices if c != current and c not in failed]
        preferred = [c for c in (self.swap or {}).get(str(current), []) if c in fresh]
        return preferred or fresh

    def _number_range(
        self, name: str, knob: Knob, current: float, lessons: Lessons
    ) -> BaseDistribution | None:
        low, high = knob.low, knob.high
        if self.to is not None:
            low = high = knob.low if self.to == "low" else knob.high
        elif self.scale is not None and current > 0:
            low, high = current * self.scale[0], current * self.scale[1]
        elif self.span is not None:
            low, high = _span(knob, self.span)
        else:
            return None
        low, high = lessons.narrow(name, max(low, knob.low), min(high, knob.high))
        integer = isinstance(current, int) and not isinstance(current, bool)
        if integer:
            low, high = math.ceil(low), math.floor(high)
        if low > high or (low == high == current):
            return None
        if integer:
            return IntDistribution(int(low), int(high), log=knob.log and low > 0)
        return FloatDistribution(low, high, log=knob.log and low > 0 and low < high)


def _span(knob: Knob, span: tuple[float, float]) -> tuple[float, float]:
    if knob.log:
        a, b = math.log(knob.low), math.log(knob.high)
        return math.exp(a + span[0] * (b - a)), math.exp(a + span[1] * (b - a))
    width = knob.high - knob.low
    return knob.low + span[0] * width, knob.low + span[1] * width


@dataclass
class Lessons:
    """What earlier runs taught: bounds on numbers, and categories that failed."""

    upper: dict[str, float] = field(default_factory=dict)
    lower: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, set[Any]] = field(default_factory=dict)

    def learn(self, remedy: Remedy, knobs: dict[str, Knob], config: dict[str, Any]) -> None:
        """The run with ``config`` failed in a way ``remedy`` treats: remember the bad side."""
        for name, knob in knobs.items():
            if knob.role != remedy.role:
                continue
            value = config[name]
            if knob.is_categorical:
                self.excluded.setdefault(name, set()).add(value)
            elif remedy.direction == "down":
                self.upper[name] = min(self.upper.get(name, math.inf), value)
            elif remedy.direction == "up":
                self.lower[name] = max(self.lower.get(name, -math.inf), value)

    def narrow(self, name: str, low: float, high: float) -> tuple[float, float]:
        upper, lower = self.upper.get(name), self.lower.get(name)
        if upper is not None:
            high = min(high, upper * (1 - 1e-9) if upper > 0 else upper)
        if lower is not None:
            low = max(low, lower * (1 + 1e-9) if lower > 0 else lower)
        return low, high

    def to_dict(self) -> dict[str, Any]:
        return {
            "upper": self.upper,
            "lower": self.lower,
            "excluded": {k: sorted(map(str, v)) for k, v in self.excluded.items()},
        }
