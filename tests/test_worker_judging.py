"""A run judged in its worker (rescue.worker.judging) is judged exactly as the driver would
judge it: the findings, verdict, notes, health and report counts the driver records through
the batches' wire format are those of judging every report in the driver."""

import json
import math
import os
import random
from pathlib import Path

import pytest

import seed_fixtures as seeds
from rescue.config import Target
from rescue.detectors.judge import JudgeSpec
from rescue.detectors.run_monitor import RunMonitor
from rescue.detectors.stream import MetricStream
from rescue.engine.experiment import reports_in
from rescue.kinds import MetricKinds
from rescue.policy import load_policy
from rescue.worker.judging import JUDGED_KEY, BatchJudge, ending, judgments
from rescue.worker.report_batch import Batcher

POLICY = load_policy("default")


def healthy_then_flat(n: int = 120) -> list[dict]:
    """Falls, then sits: a plateau, which only the end-of-run checks of a run judge."""
    return [{"loss": max(0.5, 2.0 / (1 + 0.2 * i)), "acc": min(0.6, 0.01 * i)} for i in range(n)]


def spike_that_recovers() -> list[dict]:
    """A transient climb: a finding that does not hold, and a note saying so."""
    losses = [1 / (1 + 0.2 * i) for i in range(30)]
    losses[15:18] = [0.9, 1.0, 1.05]
    return [{"loss": v} for v in losses]


CASES = {
    "seed_000": (seeds.seed_000_flat_zero_outputs, {}, None),
    "seed_001_panic": (seeds.seed_001_panic, {}, None),
    "seed_001_uniform": (seeds.seed_001_uniform, {}, None),
    "seed_002": (seeds.seed_002_divergence, {}, None),
    "seed_003": (seeds.seed_003_dead_head, {}, None),
    "seed_004_explosion": (seeds.seed_004_explosion, {}, None),
    "seed_004_confusion": (seeds.seed_004_confusion, {}, None),
    "seed_004_stuck": (seeds.seed_004_stuck, {}, None),
    "plateau_at_end": (healthy_then_flat, {"acc": Target(above=0.9)}, None),
    "declared_length": (healthy_then_flat, {"acc": Target(above=0.9)}, 50),
    "spike": (spike_that_recovers, {}, None),
}


def in_the_driver(reports, targets, length, path: Path) -> RunMonitor:
    watch = RunMonitor(POLICY, MetricStream(MetricKinds(), targets, length), path, length=length)
    ended = not any(watch.on_report(m) for m in reports) or watch.reached_length
    if ended and watch.verdict is None:
        watch.completed()
    watch.close()
    return watch


def in_the_worker(reports, targets, length, path: Path, seed: int) -> RunMonitor:
    """Through the wire: a batcher in the worker with the run's judge, the results as Ray
    Tune would carry them, unpacked by the driver as its stopper does."""
    watch = RunMonitor(POLICY, MetricStream(MetricKinds(), targets, length), path, length=length)
    judge = BatchJudge.build(watch.spec)
    sent: list[dict] = []
    batcher = Batcher(lambda result, _: sent.append(result), seconds=60, most=1, judge=judge)
    sizes = random.Random(seed)
    due = sizes.randint(1, 7)  # batches of 1 to 7 reports
    try:
        for metrics in reports:
            batcher.add(metrics)
            due -= 1
            if not due:
                batcher.flush()
                due = sizes.randint(1, 7)
    except SystemExit:  # the judge ended the run
        assert batcher.stopped
    batcher.close(finished=True)
    driver_stopped = False
    for result in sent:
        batch = reports_in(result)
        said = judgments(result, len(batch))
        assert said is not None  # every result was judged in the worker
        for metrics, judged in zip(batch, said, strict=True):
            driver_stopped = watch.on_report(metrics, judged) or driver_stopped
        found = ending(result)
        if found is not None:
            watch.take_ending(found)
    if (not driver_stopped or watch.reached_length) and watch.verdict is None:
        watch.completed()
    watch.close()
    return watch


def as_json(findings) -> str:
    return json.dumps([f.to_dict() if f else None for f in findings], sort_keys=True)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_a_run_judged_in_its_worker_is_recorded_as_judged_in_the_driver(name, seed, tmp_path):
    make, targets, length = CASES[name]
    reports = make()
    here = in_the_driver(reports, targets, length, tmp_path / "driver.jsonl")
    there = in_the_worker(reports, targets, length, tmp_path / "worker.jsonl", seed)
    assert as_json(there.findings) == as_json(here.findings)
    assert as_json([there.verdict]) == as_json([here.verdict])
    assert there.notes == here.notes
    assert there.health == here.health and there.stream.step == here.stream.step


def test_the_cases_cover_verdicts_end_of_run_findings_and_notes(tmp_path):
    """The equivalence above would be empty without these: each kind of judgment occurs."""
    watches = {n: in_the_driver(m(), t, ln, Path(os.devnull)) for n, (m, t, ln) in CASES.items()}
    assert watches["seed_002"].verdict.signature == "divergence"
    assert any(f.signature == "plateau" for f in watches["plateau_at_end"].findings)
    assert any("did not hold" in note for note in watches["spike"].notes)
    assert watches["declared_length"].reached_length


def test_a_finding_goes_at_once_and_the_verdict_ends_the_run_at_its_next_report():
    sent = []
    judge = BatchJudge.build(JudgeSpec(POLICY))
    batcher = Batcher(lambda r, _: sent.append(r), seconds=60, timer=True, judge=judge)
    batcher.add({"loss": 1.0})  # the first report goes at once
    batcher.add({"loss": 0.9})  # waits for its batch
    assert len(sent) == 1
    batcher.add({"loss": math.nan})  # the verdict goes at once, with the report before it
    assert len(sent) == 2 and [m["loss"] for m in reports_in(sent[1])][0] == 0.9
    (_, said) = judgments(sent[1], 2)
    assert [f.signature for f in said.findings] == ["non_finite"] and batcher.stopped
    with pytest.raises(SystemExit) as stop:  # as when Ray Tune stops a trial
        batcher.add({"loss": 0.5})
    assert stop.value.code == 0
    batcher.close(finished=True)
    assert len(sent) == 2  # nothing after the verdict: the run was over


def test_a_run_that_ends_by_itself_sends_its_end_of_run_checks_even_with_nothing_pending():
    sent = []
    spec = JudgeSpec(POLICY, targets={"acc": Target(above=0.9)})
    batcher = Batcher(lambda r, _: sent.append(r), seconds=60, judge=BatchJudge.build(spec))
    for metrics in healthy_then_flat():
        batcher.add(metrics)
    batcher.flush()
    count = len(sent)
    batcher.close(finished=True)
    assert len(sent) == count + 1 and reports_in(sent[-1]) == []
    assert any(f.signature == "plateau" for f in ending(sent[-1]))
    assert all(ending(r) is None for r in sent[:-1])


def test_a_result_not_judged_in_the_worker_is_judged_by_the_driver():
    result = {"loss": 0.5, "training_iteration": 1}
    assert judgments(result, 1) is None and ending(result) is None
    sent = []
    Batcher(lambda r, _: sent.append(r)).add({"loss": 1.0})  # a batcher without a judge
    assert JUDGED_KEY not in sent[0] and judgments(sent[0], 1) is None


def test_a_judge_that_cannot_be_built_in_the_worker_leaves_the_judging_to_the_driver(capsys):
    policy = load_policy("default")
    broken = JudgeSpec(policy, kinds={"loss": "no such kind"})
    assert BatchJudge.build(broken) is None
    assert "judged in the driver" in capsys.readouterr().err


def test_the_judgment_travels_as_json(tmp_path):
    judge = BatchJudge.build(JudgeSpec(POLICY))
    said = [judge.judge_report(m) for m in ({"loss": 1.0}, {"loss": math.inf})]
    data = json.loads(judge.annotate({1: said[1]}, finished=False))
    assert list(data["at"]) == ["1"] and data["at"]["1"]["findings"][0]["signature"]
