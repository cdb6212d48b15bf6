"""A run is judged in its worker, where its metrics are made: each report goes through the
run's judge (:class:`~rescue.detectors.judge.RunJudge`) as it is made, in the training thread
(judging in a thread of its own was measured too: it shares the interpreter with the training
all the same, and saved it little), and the result that carries the report carries what the
judge said at it. The driver takes those findings instead of running the detectors itself
(it keeps the run's stream, for its records), so a sweep's judging grows with its workers,
not in its one driver.

A report with a finding goes at once, with those before it. A verdict, or the run's declared
length, ends the run from inside: the training thread ends at its next report, as when Ray
Tune stops a trial (which it usually does first, once the driver has the verdict). The driver
can still stop a run (a stall, a spent budget, Ctrl-C). When the run ends by itself, its
end-of-run checks travel with its last batch.

The judgment of a result (``rescue_judged``, JSON) names the reports of the batch the judge
said something at (``at``: index in the batch -> :class:`~rescue.detectors.judge.Judged`),
and holds the end-of-run checks when the run ended (``ending``). A result without it was
not judged in the worker; the driver judges its reports."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rescue.detectors.findings import Finding
from rescue.detectors.judge import Judged, JudgeSpec, RunJudge
from rescue.worker.reporting import Metrics

JUDGED_KEY = "rescue_judged"


class BatchJudge:
    """The judge of one run in its worker: each report as it is made, and what it said of a
    batch's reports when the batch is sent.

    >>> from rescue.policy import load_policy
    >>> judge = BatchJudge(JudgeSpec(load_policy("default")).judge())
    >>> batch = [{"loss": 1.0}, {"loss": float("nan")}, {"loss": 2.0}]
    >>> said = [judge.judge_report(metrics) for metrics in batch]
    >>> said[0] is None and said[1]["findings"][0]["signature"]
    'non_finite'
    >>> judge.over  # the verdict: the run ends from inside, the last report is not judged
    True
    >>> result = {JUDGED_KEY: judge.annotate({1: said[1]}, finished=False)}
    >>> [[f.signature for f in j.findings] for j in judgments(result, len(batch))]
    [[], ['non_finite'], []]
    """

    def __init__(self, judge: RunJudge) -> None:
        self.judge = judge
        self.over = False  # a verdict, or the declared length: the run is to end
        self._notes = len(judge.notes)
        self._ended = False  # the end-of-run checks were sent

    @classmethod
    def build(cls, spec: JudgeSpec, replay: Iterable[Metrics] = ()) -> BatchJudge | None:
        """The judge of a run, after the reports it goes on from (``replay``: an interrupted
        run's, judged again as the driver judged them). None when it cannot be built here (a
        detector registered in the driver only): the driver judges the run then."""
        try:
            judge = spec.judge()
        except Exception as exc:
            print(f"rescue: the run is judged in the driver ({exc!r})", file=sys.stderr)
            return None
        for metrics in replay:
            judge.on_report(metrics)
        return cls(judge)

    def judge_report(self, metrics: Metrics) -> dict[str, Any] | None:
        """Judge one report as it is made: what the judge said at it, if anything. Reports
        after the verdict or past the declared length are not judged."""
        if self.over:
            return None
        judge = self.judge
        found = judge.on_report(metrics)
        notes = judge.notes[self._notes :]
        self._notes = len(judge.notes)
        self.over = judge.verdict is not None or judge.reached_length
        return Judged(tuple(found), tuple(notes)).to_dict() if found or notes else None

    def annotate(self, said: Mapping[int, dict[str, Any]], finished: bool) -> str:
        """The judgment of a batch, from what was said at its reports (index in the batch ->
        :meth:`judge_report`); with the end-of-run checks when the run ended by itself
        (``finished``) or reached its declared length."""
        judge = self.judge
        data: dict[str, Any] = {"at": {str(index): s for index, s in said.items()}}
        if judge.verdict is None and not self._ended and (finished or judge.reached_length):
            self._ended = True
            data["ending"] = [f.to_dict() for f in judge.end()]
        self.over = self.over or finished
        return json.dumps(data)


def judgments(result: Mapping[str, Any], reports: int) -> list[Judged] | None:
    """What the worker's judge said at each of a result's ``reports`` reports; None when the
    worker did not judge them."""
    raw = result.get(JUDGED_KEY)
    if raw is None:
        return None
    at = json.loads(raw)["at"]
    return [Judged.from_dict(at[str(i)]) if str(i) in at else Judged() for i in range(reports)]


def ending(result: Mapping[str, Any]) -> list[Finding] | None:
    """The end-of-run checks the worker sent with the run's last result, if any."""
    raw = result.get(JUDGED_KEY)
    data = json.loads(raw) if raw is not None else {}
    found = data.get("ending")
    return None if found is None else [Finding.from_dict(f) for f in found]
