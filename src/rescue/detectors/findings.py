"""A finding: a failure signature recognised in a run's metrics, with the evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["restart", "warn"]


@dataclass(frozen=True)
class Finding:
    """What a detector saw, where, and why it says so.

    ``onset`` is the report where the condition began, ``step`` the report where the detector
    was sure of it; ``reason`` is one line a person can check against the numbers.
    """

    signature: str
    metric: str | None
    step: int
    reason: str
    onset: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    action: Action = "restart"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["onset"] is None:
            data["onset"] = self.step
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(**data)
