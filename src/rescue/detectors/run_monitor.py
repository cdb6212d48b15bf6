"""Monitoring one run from the driver: each report goes to the run's judge, its history file
and the console; the first finding the policy restarts for stops the run. The judging itself,
with its confirmation, is :mod:`rescue.detectors.judge`. ("Watch" is ``rescue.watch``, the
torch hooks, only.)"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from rescue import strict_json
from rescue.config import Target
from rescue.detectors.crash_error import about_non_finite, headline
from rescue.detectors.findings import Finding
from rescue.detectors.health import health
from rescue.detectors.judge import Judged, JudgeSpec, RunJudge
from rescue.detectors.stream import MetricStream
from rescue.kinds import MetricKinds
from rescue.policy import Policy
from rescue.worker.reporting import Metrics

ReportListener = Callable[[int, Metrics, list[Finding]], None]


class RunMonitor:
    """The :class:`~rescue.engine.lane.Monitor` of one run, in the driver: each report goes
    to the run's judge (:class:`~rescue.detectors.judge.RunJudge`), its history file and the
    console; the run's clocks (a stall, the wall-clock budget) are kept here."""

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
        self.judge = RunJudge(policy, stream, length)
        self.deadline = deadline
        self.out_of_time = False
        self.health: list[float] = []
        self.listener = listener
        stall = policy.rules.get("stall")
        self.stall_seconds = float(stall.params.get("seconds", math.inf)) if stall else math.inf
        self.started = self.last_report = time.monotonic()
        self._history = history.open("w", buffering=1)  # a run's reports, from its first
        self.received = stream.step + 1  # reports that arrived, with those after the verdict

    @classmethod
    def of(
        cls,
        spec: JudgeSpec,
        history: Path,
        listener: ReportListener | None = None,
        deadline: float | None = None,
    ) -> RunMonitor:
        """The monitor of a new run judged as ``spec`` says (the spec its worker gets)."""
        return cls(spec.policy, spec.stream(), history, listener, spec.length, deadline)

    @property
    def length(self) -> int | None:
        return self.judge.length

    @property
    def spec(self) -> JudgeSpec:
        """What the run's worker needs to judge the run as this monitor would."""
        stream = self.judge.stream
        return JudgeSpec(self.policy, stream.kinds.declared, stream.targets, self.length)

    @property
    def stream(self) -> MetricStream:
        return self.judge.stream

    @property
    def verdict(self) -> Finding | None:
        return self.judge.verdict

    @property
    def findings(self) -> list[Finding]:
        return self.judge.findings

    @property
    def notes(self) -> list[str]:
        return self.judge.notes

    def begin(self) -> None:
        """The run's trial started (Ray placed it and started its worker): the stall clock
        starts here, not while the trial waited for resources or a worker."""
        self.last_report = time.monotonic()

    def on_report(self, metrics: Metrics, judged: Judged | None = None) -> bool:
        """Take one report, with its worker's judgment of it if the worker judged the run;
        True when the run is to stop. Reports that arrive after the verdict (the run made them
        before the stop reached it: reports travel in batches) are written to metrics.jsonl
        and counted, but not judged: the stream, the health and the evidence stay as they
        were at the verdict. Reports past the declared length are not part of the run."""
        if self.reached_length:
            return True
        self.last_report = time.monotonic()
        if self.verdict is not None:
            self._history.write(strict_json.metrics_line(self.received, metrics))
            self.received += 1
            return True
        judge = self.judge
        new = judge.on_report(metrics) if judged is None else judge.take(metrics, judged)
        step = self.stream.step
        self.received = step + 1
        self._history.write(strict_json.metrics_line(step, metrics))
        self.health.append(health(self.stream))
        if self.listener is not None:
            self.listener(step, metrics, new)
        return self.verdict is not None or self.reached_length

    @property
    def reached_length(self) -> bool:
        return self.judge.reached_length

    def take_ending(self, findings: list[Finding]) -> None:
        """The worker's end-of-run checks: :meth:`completed` records them."""
        self.judge.take_ending(findings)

    def should_stop(self) -> bool:
        if self.verdict is None and time.monotonic() - self.last_report > self.stall_seconds:
            waited = time.monotonic() - self.last_report
            self.judge.record(
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
        self.judge.end()

    def misconfigured(self, reason: str, **evidence: object) -> None:
        """The run ended without the metrics the cfg needs: not a failure of training, and
        no restart can help; the rescue ends and says why."""
        self.judge.record(
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
        self.judge.record(
            Finding(
                signature, None, max(self.stream.step, 0), reason, evidence={"traceback": traceback}
            )
        )

    def close(self) -> None:
        self._history.close()


def replay_run(
    policy: Policy,
    reports: Iterable[Metrics],
    kinds: Mapping[str, str] | None = None,
    targets: Mapping[str, Target] | None = None,
    completed: bool = True,
    length: int | None = None,
) -> RunMonitor:
    """Watch a recorded run as if it were streaming: stops at the first restart-worthy finding,
    and runs the end-of-run checks when the run got to its end (``completed``). ``length``: the
    declared run length in reports (``budget.reports_per_run``)."""
    stream = MetricStream(MetricKinds(kinds), targets, length=length)
    monitor = RunMonitor(policy, stream, Path(os.devnull))
    for metrics in reports:
        if monitor.on_report(metrics):
            break
    if completed and monitor.verdict is None:
        monitor.completed()
    monitor.close()
    return monitor
