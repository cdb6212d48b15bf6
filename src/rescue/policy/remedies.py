"""Remedies: what a restart changes, as data from the policy file.

A remedy names a knob *role* and how it moves a knob of that role: ``scale`` (the first move's
window, times the current value), ``span`` (a fraction of the domain, for a knob at 0 or
off), ``to`` (one end of the domain) or ``swap`` (preferred new choices of a category). Which
way a number moves, and how far later moves reach, is decided with the evidence of the runs so
far (:mod:`rescue.policy.choice`); the remedy gives the prior.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["down", "up"]


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
    # Turns in a row for one signature before the next remedy in its list gets one: a priority,
    # not a cap; a remedy whose knob still has room is tried again once the others had theirs.
    tries: int = Field(default=1, ge=1)
    # Whether the evidence may turn the remedy around (a learning-rate cut into a raise);
    # false for a knob whose other direction is rarely a fix (momentum toward 1).
    reversible: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> Remedy:
        for key in ("scale", "span"):
            pair = getattr(self, key)
            if pair is not None and not (0 <= pair[0] <= pair[1]):
                raise ValueError(f"{key} must be [a, b] with 0 <= a <= b, got {list(pair)}")
        if self.scale is not None and self.scale[0] < 1 < self.scale[1]:
            raise ValueError(f"scale must be all below 1 or all above 1, got {list(self.scale)}")
        if self.role is not None and not any((self.scale, self.span, self.to, self.swap)):
            raise ValueError("a change: scale, span, to or swap")
        return self

    @property
    def direction(self) -> Direction | None:
        """Which way the remedy moves a number when the evidence does not say."""
        if self.to is not None:
            return "down" if self.to == "low" else "up"
        if self.scale is not None and self.scale[1] <= 1:
            return "down"
        if self.scale is not None and self.scale[0] >= 1:
            return "up"
        if self.span is not None:
            return "up"  # turning a knob on from 0 or off
        return None

    def window(self, direction: Direction) -> tuple[float, float] | None:
        """The first move's window as factors of the current value, in ``direction``: the
        policy's scale, mirrored (1/b, 1/a) when the evidence turns the remedy around."""
        if self.scale is None:
            return None
        a, b = self.scale
        if self.direction == direction:
            return a, b
        return (1 / b if b else float("inf")), (1 / a if a else float("inf"))
