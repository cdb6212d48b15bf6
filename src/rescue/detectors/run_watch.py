"""Watching one run: each report goes to the metric stream, the detectors, the run's history
file and the console; the first finding the policy restarts for stops the run.

Before a finding stops the run it must be confirmed: a signature that can be transient (a
spike, an early collapse onto the majority class) must keep holding for the ``confirm``
observations its policy rule asks for, and a finding is held off while every ``success``
target is on course to be met (:func:`rescue.detectors.course.on_course`), unless its rule says
``hold_on_course: false`` (a NaN is never on course)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from rescue import strict_json
from rescue.config import Target
from rescue.detectors.course import on_course
from rescue.detectors.crash_error import about_non_finite, headline
from rescue.detectors.findings import Finding
from rescue.detectors.health import health
from rescue.detectors.stream import MetricStream
from rescue.kinds import MetricKinds
from rescue.policy import Policy
from rescue.worker.reporting import Metrics

ReportListener = Callable[[int, Metrics, list[Finding]], None]


class RunWatch:
    """The :class:`~rescue.engine.lane.RunWatcher` of one run."""

    def __init__(
        self,
        policy: Policy,
        stream: MetricStream,
        history: Path,
        listener: ReportListener | None = None,
        length: int | None = None,
        deadline: float | None = None,
    ) -> None:
        """``length``: the run ends (healthy, completed) after this many reports;
        ``deadline``: the ``time.monotonic()`` at which the rescue's wall-clock budget is spent,
        when the run is stopped (no finding: it says nothing about the run)."""
        self.policy = policy
        self.length = length
        self.deadline = deadline
        self.out_of_time = False
        self.stream = stream
        self.detectors = policy.detectors()
        self.findings: list[Finding] = []
        self.verdict: Finding | None = None
        self.health: list[float] = []
        self.listener = listener
        stall = policy.rules.get("stall")
        self.stall_seconds = float(stall.params.get("seconds", math.inf)) if stall else math.inf
        self.started = self.last_report = time.monotonic()
        self._history = history.open("w", buffering=1)  # a run's reports, from its first
        self.received = stream.step + 1  # reports that arrived, with those after the verdict
        self._seen: set[tuple[str, str | None]] = set()
        self._pending: dict[str, tuple[Finding, int]] = {}  # signature -> (first sight, seen)
        self.notes: list[str] = []  # findings that did not stop the run, and why

    def begin(self) -> None:
        """The run's trial started (Ray placed it and started its worker): the stall clock
        starts here, not while the trial waited for resources or a worker."""
        self.last_report = time.monotonic()

    def on_report(self, metrics: Metrics) -> bool:
        """Take one report; True when the run is to stop. Reports that arrive after the
        verdict (the run made them before the stop reached it: reports travel in batches)
        are written to metrics.jsonl and counted, but not judged: the stream, the health and
        the evidence stay as they were at the verdict. Reports past the declared length are
        not part of the run."""
        if self.reached_length:
            return True
        self.last_report = time.monotonic()
        if self.verdict is not None:
            self._history.write(strict_json.metrics_line(self.received, metrics))
            self.received += 1
            return True
        step = self.stream.append(metrics)
        self.received = step + 1
        self._history.write(strict_json.metrics_line(step, metrics))
        self.health.append(health(self.stream))
        new = []
        if self.verdict is None:
            for detector in self.detectors:
                finding = self._confirmed(detector.signature, detector.on_report(self.stream))
                if finding is not None:
                    new.extend(self._record(finding))
        if self.listener is not None:
            self.listener(step, metrics, new)
        return self.verdict is not None or self.reached_length

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
            if note not in self.notes:
                self.notes.append(note + f" (from report {self.stream.step})")
            return None
        first = pending[0]
        if rule.confirm:
            reason = f"{finding.reason}; it held for {rule.confirm} more reports"
            return replace(finding, onset=first.onset, reason=reason)
        return finding

    def _observed(self, finding: Finding) -> bool:
        return finding.metric is None or finding.metric in self.stream.latest

    @property
    def reached_length(self) -> bool:
        return self.length is not None and self.stream.step + 1 >= self.length

    def should_stop(self) -> bool:
        if self.verdict is None and time.monotonic() - self.last_report > self.stall_seconds:
            waited = time.monotonic() - self.last_report
            self._record(
                Finding(
                    "stall",
                    None,
                    max(self.stream.step, 0),
                    f"no report for {waited:.0f} s (limit {self.stall_seconds:g} s)",
                    evidence={"seconds_without_report": round(waited, 1)},
                )
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            if not self.out_of_time:
                self.notes.append("stopped: the wall-clock budget (budget.seconds) was spent")
            self.out_of_time = True
        return self.verdict is not None or self.out_of_time

    def completed(self) -> None:
        """The run ended normally: end-of-run checks (such as a missed target)."""
        if self.verdict is None:
            for detector in self.detectors:
                finding = detector.on_end(self.stream)
                if finding is not None:
                    self._record(finding)

    def misconfigured(self, reason: str, **evidence: object) -> None:
        """The run ended without the metrics the cfg needs: not a failure of training, and
        no restart can help; the rescue ends and says why."""
        self._record(
            Finding("misconfigured", None, max(self.stream.step, 0), reason, evidence=evidence)
        )

    def crashed(self, traceback: str) -> None:
        """The training function raised. An error about NaN or infinite values is the
        ``non_finite`` signature (the run blew up, and said so by raising); any other is a
        ``crash``."""
        error = headline(traceback)
        if about_non_finite(traceback):
            signature, reason = (
                "non_finite",
                f"the training function raised on non-finite values: {error}",
            )
        else:
            signature, reason = "crash", f"the training function raised: {error}"
        self._record(
            Finding(
                signature, None, max(self.stream.step, 0), reason, evidence={"traceback": traceback}
            )
        )

    def close(self) -> None:
        self._history.close()

    def _record(self, finding: Finding) -> list[Finding]:
        key = (finding.signature, finding.metric)
        if key in self._seen:
            return []
        self._seen.add(key)
        finding = replace(finding, action=self.policy.action(finding.signature))
        self.findings.append(finding)
        if finding.action == "restart" and self.verdict is None:
            self.verdict = finding
        return [finding]


def replay_run(
    policy: Policy,
    reports: Iterable[Metrics],
    kinds: Mapping[str, str] | None = None,
    targets: Mapping[str, Target] | None = None,
    completed: bool = True,
    length: int | None = None,
) -> RunWatch:
    """Watch a recorded run as if it were streaming: stops at the first restart-worthy finding,
    and runs the end-of-run checks when the run got to its end (``completed``). ``length``: the
    declared run length in reports (``budget.reports_per_run``)."""
    stream = MetricStream(MetricKinds(kinds), targets, length=length)
    watch = RunWatch(policy, stream, Path(os.devnull))
    for metrics in reports:
        if watch.on_report(metrics):
            break
    if completed and watch.verdict is None:
        watch.completed()
    watch.close()
    return watch
