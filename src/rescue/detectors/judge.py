"""Judging one run: each report goes to the metric stream and the detectors; a finding the
policy restarts for becomes the run's verdict once it is confirmed.

Before a finding stops the run it must be confirmed: a signature that can be transient (a
spike, an early collapse onto the majority class) must keep holding for the ``confirm``
observations its policy rule asks for, and a finding is held off while every ``success``
target is on course to be met (:func:`rescue.detectors.course.on_course`), unless its rule says
``hold_on_course: false`` (a NaN is never on course).

A run is judged where its metrics are made: in its worker, beside the training
(:mod:`rescue.worker.judging`), which sends the driver its reports with what it found at each
(:class:`Judged`). The driver keeps the stream of the run too, for its records, and takes the
worker's findings instead of running the detectors again (:meth:`RunJudge.take`). A run whose
reports come without a judgment (a script that calls ``ray.tune.report`` itself, a Ray Train
worker, a recording replayed) is judged in the driver by the same class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rescue.config import RescueConfig, Target
from rescue.detectors.course import on_course
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream
from rescue.kinds import MetricKinds
from rescue.policy import Policy
from rescue.worker.reporting import Metrics


@dataclass(frozen=True)
class Judged:
    """What the judge of a run said at one report: the findings it recorded and the notes it
    made there."""

    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.findings:
            data["findings"] = [f.to_dict() for f in self.findings]
        if self.notes:
            data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judged:
        findings = tuple(Finding.from_dict(f) for f in data.get("findings", ()))
        return cls(findings, tuple(data.get("notes", ())))


@dataclass(frozen=True)
class JudgeSpec:
    """What a judge needs, picklable, so that a run's worker can build the driver's judge.

    >>> from rescue.policy import load_policy
    >>> judge = JudgeSpec(load_policy("default")).judge()
    >>> [judge.on_report({"loss": x}) for x in (1.0, 0.9)]
    [[], []]
    >>> judge.on_report({"loss": float("nan")})[0].signature
    'non_finite'
    """

    policy: Policy
    kinds: Mapping[str, str] = field(default_factory=dict)  # the cfg's metric_kinds
    targets: Mapping[str, Target] = field(default_factory=dict)
    length: int | None = None

    @classmethod
    def of(cls, policy: Policy, config: RescueConfig) -> JudgeSpec:
        """How a run of ``config`` is judged, a rescue's run and a sweep's trial alike: its
        metric kinds, its success targets and its declared length."""
        kinds, targets = config.metric_kinds, config.success
        return cls(policy, kinds, targets, config.budget.reports_per_run)

    def stream(self) -> MetricStream:
        """A new run's stream."""
        return MetricStream(MetricKinds(self.kinds), dict(self.targets), self.length)

    def judge(self) -> RunJudge:
        return RunJudge(self.policy, self.stream(), self.length)


class RunJudge:
    """The detectors of one run on its stream, with the policy's confirmation."""

    def __init__(self, policy: Policy, stream: MetricStream, length: int | None = None) -> None:
        """``length``: the run ends (healthy, completed) after this many reports."""
        self.policy, self.stream, self.length = policy, stream, length
        self.detectors = policy.detectors()
        self.findings: list[Finding] = []
        self.verdict: Finding | None = None
        self.notes: list[str] = []  # findings that did not stop the run, and why
        self._seen: set[tuple[str, str | None]] = set()
        self._pending: dict[str, tuple[Finding, int]] = {}  # signature -> (first sight, seen)
        self._ending: list[Finding] | None = None  # the worker's end-of-run checks, if told

    def on_report(self, metrics: Metrics) -> list[Finding]:
        """Judge one report; the findings recorded at it (the verdict among them)."""
        stream, pending = self.stream, self._pending
        stream.append(metrics)
        new: list[Finding] = []
        for detector in self.detectors:
            found = detector.on_report(stream)
            if found is None and detector.signature not in pending:
                continue  # the usual case, on the hot path: nothing seen, nothing waiting
            finding = self._confirmed(detector.signature, found)
            if finding is not None:
                new.extend(self.record(finding))
        return new

    def take(self, metrics: Metrics, judged: Judged) -> list[Finding]:
        """One report as the run's worker judged it: the stream takes the report, the
        detectors do not run again."""
        self.stream.append(metrics)
        new = [recorded for f in judged.findings for recorded in self.record(f)]
        self.notes.extend(judged.notes)
        return new

    def take_ending(self, findings: list[Finding]) -> None:
        """The end-of-run checks of the run's worker, which :meth:`end` then records."""
        self._ending = list(findings)

    def end(self) -> list[Finding]:
        """The end-of-run checks (such as a missed target): the worker's, when it judged the
        run, else the detectors' here."""
        if self.verdict is not None:
            return []
        if self._ending is not None:
            ending = self._ending
        else:
            ending = [f for d in self.detectors if (f := d.on_end(self.stream)) is not None]
        return [recorded for f in ending for recorded in self.record(f)]

    @property
    def reached_length(self) -> bool:
        return self.length is not None and self.stream.step + 1 >= self.length

    def record(self, finding: Finding) -> list[Finding]:
        """Keep ``finding`` with the action its rule gives it (once per signature and
        metric); the first restart-worthy one is the verdict."""
        key = (finding.signature, finding.metric)
        if key in self._seen:
            return []
        self._seen.add(key)
        finding = replace(finding, action=self.policy.action(finding.signature))
        self.findings.append(finding)
        if finding.action == "restart" and self.verdict is None:
            self.verdict = finding
        return [finding]

    def _confirmed(self, signature: str, finding: Finding | None) -> Finding | None:
        """``finding`` once it may stop the run; None while it waits for confirmation or is
        held off because the run is on course."""
        rule = self.policy.rules.get(signature)
        pending = self._pending.get(signature)
        if finding is None:
            if pending is not None and self._observed(pending[0]):
                self._pending.pop(signature)
                self.notes.append(
                    f"{signature} at report {pending[0].step} did not hold: "
                    f"{pending[0].metric or 'the run'} recovered by report {self.stream.step}"
                )
            return None
        if rule is None or rule.action != "restart":
            return finding
        if pending is None or pending[0].metric != finding.metric:
            pending = (finding, 0)
        if self._observed(finding):
            pending = (pending[0], pending[1] + 1)
        self._pending[signature] = pending
        if pending[1] <= rule.confirm:
            return None
        if rule.hold_on_course and on_course(self.stream, self.length):
            note = f"{signature} held off: every target is on course to be met"
            if not any(n.startswith(note) for n in self.notes):  # once, from its first report
                self.notes.append(note + f" (from report {self.stream.step})")
            return None
        first = pending[0]
        if rule.confirm:
            reason = f"{finding.reason}; it held for {rule.confirm} more reports"
            return replace(finding, onset=first.onset, reason=reason)
        return finding

    def _observed(self, finding: Finding) -> bool:
        return finding.metric is None or finding.metric in self.stream.latest
