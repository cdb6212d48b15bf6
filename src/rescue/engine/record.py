"""``report.json``: what was found, what was changed and why, for every run. It is rewritten
when every run starts and ends, atomically, so an interrupted rescue keeps everything already
recorded, and its ``resume`` entry holds what ``rescue resume`` needs to go on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rescue import strict_json
from rescue.detectors.findings import Finding

if TYPE_CHECKING:
    from rescue.detectors.run_monitor import RunMonitor
    from rescue.policy import Choice, Policy

Outcome = Literal["healthy", "rescued", "not_rescued", "running", "interrupted"]


def remedy_entry(choice: Choice, policy: Policy, verdict: Finding) -> dict[str, Any]:
    """A run's ``remedy`` as report.json records it, for a rescue's restart and a sweep's
    in-place rescue alike; ``changes`` is filled when the next run starts."""
    return {
        "name": choice.named(policy),
        "for": verdict.signature,
        "role": choice.remedy.role if choice.remedy else None,
        "restart": choice.restart,
        "why": choice.why,
        "search_space": {k: repr(v) for k, v in choice.space.items()},
        "changes": {},
    }


@dataclass
class RunRecord:
    run: int
    config: dict[str, Any]
    status: Literal["running", "stopped", "completed", "crashed", "interrupted"] = "running"
    reports: int = 0
    final_metrics: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    remedy: dict[str, Any] | None = None
    trial: int | None = None
    seconds: float = 0.0
    health: float | None = None
    met_success: bool = False
    error: str | None = None
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    resumed: dict[str, Any] | None = None  # set when the run restarted after an interruption
    evidence: dict[str, Any] | None = None  # what the run says of its knob values
    notes: list[str] = field(default_factory=list)  # findings that did not stop it, and why

    @property
    def verdict(self) -> Finding | None:
        return next((f for f in self.findings if f.action == "restart"), None)

    def ended(
        self,
        monitor: RunMonitor,
        status: Literal["stopped", "completed", "crashed", "interrupted"],
        error: str | None,
        seconds: float,
    ) -> None:
        """Take what the run's monitor saw once the run ended with ``status``; success is met
        only by a run that completed with every target met by its last value."""
        stream = monitor.stream
        self.status = status
        self.reports = monitor.received
        self.final_metrics = dict(stream.latest)
        self.findings = list(monitor.findings)
        self.seconds = round(seconds, 2)
        self.health = monitor.health[-1] if monitor.health else None
        self.error = error
        self.met_success = status == "completed" and all(
            name in stream.series and target.met_by(stream.series[name].last)
            for name, target in stream.targets.items()
        )
        self.notes = list(monitor.notes)

    def checkpoint_before_trouble(self) -> str | None:
        """The last checkpoint saved before the earliest onset among the run's restart-worthy
        findings (a detector that reads a smoothed level dates the trouble later than one that
        reads the raw values), for a remedy that restarts from a checkpoint."""
        verdict = self.verdict
        if verdict is None:
            return None
        onset = min(
            f.onset if f.onset is not None else f.step
            for f in self.findings
            if f.action == "restart" or f is verdict
        )
        before = [path for step, path in self.checkpoints if step < onset]
        return before[-1] if before else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.to_dict() for f in self.findings]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record :meth:`to_dict` wrote (non-finite numbers stay the strings they became)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["findings"] = [Finding.from_dict(f) for f in data.get("findings") or []]
        known["checkpoints"] = [(int(s), str(p)) for s, p in data.get("checkpoints") or []]
        return cls(**known)


@dataclass
class RescueReport:
    script: str
    config_file: str
    out: str
    storage: str
    study: str
    outcome: Outcome = "running"
    final_config: dict[str, Any] | None = None
    runs: list[RunRecord] = field(default_factory=list)
    summary: str = ""
    lessons: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)  # per knob: values and verdicts
    warnings: list[str] = field(default_factory=list)
    knobs: list[str] = field(default_factory=list)
    resume: dict[str, Any] = field(default_factory=dict)  # see rescue.engine.resume

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome in ("healthy", "rescued") else 3

    @property
    def total_reports(self) -> int:
        return sum(r.reports for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "final_config": self.final_config,
            "summary": self.summary,
            "runs": [r.to_dict() for r in self.runs],
            "total_reports": self.total_reports,
            "lessons": self.lessons,
            "evidence": self.evidence,
            "warnings": self.warnings,
            "script": self.script,
            "config_file": self.config_file,
            "out": self.out,
            "storage": self.storage,
            "study": self.study,
            "resume": self.resume,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RescueReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["runs"] = [RunRecord.from_dict(r) for r in data.get("runs") or []]
        return cls(**known)

    def write(self, path: Path) -> None:
        strict_json.write_file(path, self.to_dict())
