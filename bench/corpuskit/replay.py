"""rescue's supervisor on a case, with runs replayed from direct recordings instead of Ray.

Everything but the Ray adapter is the product: the policy, the detectors on the stream, the
remedy choice and the Optuna study. A run is its recording fed report by report to the
supervisor's monitor, which stops it where a live run would stop (training is seeded, so the
reports of a run do not depend on whether it is watched); a config not yet recorded is run
directly first. The reports are judged as in a run's worker, one at a time, when the version of
rescue judges there. ``bench/corpus.py --runner ray`` runs the real command line instead.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpuskit.cases import Case
from corpuskit.recording import record
from corpuskit.rescue_api import (
    CommandSpec,
    Execution,
    Finding,
    Job,
    Monitor,
    RescueReport,
    RescueStudy,
    RunRecord,
    Supervisor,
    default_storage,
)
from rescue.policy import load_policy


@dataclass
class Spent:
    """What the replayed runs cost: reports consumed and the training time they stand for."""

    reports: int = 0
    seconds: float = 0.0
    recordings: list[str] = field(default_factory=list)


class ReplayRunner:
    """Stands where :class:`~rescue.engine.ray_runner.RayRunner` stands for the supervisor."""

    address = None

    def __init__(self, case: Case) -> None:
        self.case = case
        self.spent = Spent()

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def lane(
        self, script: str, entry: str, command: CommandSpec | None = None, judge: Any = None
    ) -> ReplayLane:
        return ReplayLane(self, judge)

    def run(
        self,
        name: str,
        script: str,
        entry: str,
        config: dict[str, Any],
        monitor: Monitor,
        resume_from: str | None = None,
        command: CommandSpec | None = None,
        log_dir: str | None = None,
        on_checkpoint: Any = None,
        judge: Any = None,
        replay: Any = None,
    ) -> Execution:
        """A run as a version of rescue before its lanes asked for it (``--variant``)."""
        return self.play(dict(config), monitor, judge, replay)

    def play(
        self, config: dict[str, Any], monitor: Monitor, judge: Any, replayed: Any
    ) -> Execution:
        """The recorded run of ``config``, its reports fed to ``monitor`` (judged first as its
        worker would, when ``judge`` says how) until the monitor says stop."""
        rec = record(self.case, config)
        monitor.begin()
        worker = WorkerJudge(judge, replayed) if judge is not None else None
        consumed = 0
        status = None
        for metrics in rec.reports:
            consumed += 1
            said = worker.judge(monitor, [metrics]) if worker else ()
            if monitor.on_report(metrics, *said):
                status = "stopped"
                break
        if worker is not None and status is None and rec.status == "completed":
            worker.judge(monitor, [], finished=True)
        self.spent.reports += consumed
        if rec.reports:
            self.spent.seconds += rec.seconds * consumed / len(rec.reports)
        if status is not None:
            return Execution("stopped")
        if rec.status == "completed":
            return Execution("completed")
        return Execution("crashed", rec.error or rec.status)


class ReplayLane:
    """The lane the supervisor runs a run on (:class:`~rescue.engine.lane.Lane`)."""

    def __init__(self, runner: ReplayRunner, judge: Any) -> None:
        self.runner, self.judge = runner, judge

    def run(self, request: Any) -> Execution:
        return self.runner.play(request.params, request.monitor, self.judge, request.replay)


class WorkerJudge:
    """The judging a run's worker does (:mod:`rescue.worker.judging`), through its wire format."""

    def __init__(self, spec: Any, replay: Any) -> None:
        from rescue.worker.judging import BatchJudge

        self.batch = BatchJudge.build(spec, replay or ())

    def judge(self, monitor: Monitor, batch: list, finished: bool = False) -> tuple:
        from rescue.worker.judging import JUDGED_KEY, ending, judgments

        if self.batch is None:
            return ()
        said = {i: s for i, m in enumerate(batch) if (s := self.batch.judge_report(m))}
        result = {JUDGED_KEY: self.batch.annotate(said, finished)}
        found = ending(result)
        if found is not None:
            monitor.take_ending(found)
        return tuple(judgments(result, len(batch)) or ())


class _Silent:
    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None:
        pass

    def reported(self, step: int, metrics: Any, findings: list[Finding]) -> None:
        pass

    def run_ended(self, record: RunRecord) -> None:
        pass

    def finished(self, report: RescueReport) -> None:
        pass


class _NoPage(Supervisor):
    def _render(self) -> None:  # the page is not what is measured
        pass


def job_of(case: Case) -> Job:
    command = None
    if case.command is not None:
        spec = case.cfg.command
        command = CommandSpec(tuple(case.command), spec.args, spec.metrics)
    script = case.script if case.script is not None else case.program()
    return Job(script, "train" if case.script else "", case.cfg, case.cfg_path, command)


@dataclass
class ReplayResult:
    report: RescueReport | None
    spent: Spent
    error: str | None
    seconds: float


def replay_rescue(
    case: Case, seed: int = 0, out: Path | None = None, search: dict[str, Any] | None = None
) -> ReplayResult:
    """The supervisor's whole rescue of ``case``, runs replayed; never raises. ``search``
    overrides the policy's ``search:`` settings (the ablations)."""
    started = time.monotonic()
    runner = ReplayRunner(case)
    with tempfile.TemporaryDirectory() as tmp:
        folder = out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            policy = load_policy(case.cfg.policy, case.folder)
            storage, name = default_storage(folder), f"corpus-{case.name}"
            if hasattr(policy, "search"):
                if search:
                    policy.search = policy.search.model_copy(update=search)
                study = RescueStudy(storage, name, seed=seed, search=policy.search)
            else:  # a version of rescue from before the search settings (--rescue-src)
                study = RescueStudy(storage, name, seed=seed)
            supervisor = _NoPage(job_of(case), policy, runner, study, folder, _Silent())
            report = supervisor.rescue()
            error = None
        except Exception:
            report, error = None, traceback.format_exc()
    return ReplayResult(report, runner.spent, error, time.monotonic() - started)
