"""Where a run is judged: what each report costs the driver when it judges the run itself,
against when the run's worker judged it (``rescue.worker.judging``), and what judging costs
the worker. Side by side in one process, alternating repeats, medians; no Ray (the transport
is measured by bench/hot_path.py and bench/report_rate.py).

- driver judges: ``RunMonitor.on_report(metrics)``: the stream, the detectors with their
  confirmation, the health, metrics.jsonl (how every run was judged before);
- driver takes: ``RunMonitor.on_report(metrics, judged)``: the same minus the detectors, plus
  reading the worker's judgment out of the result (``judgments``);
- worker judges: ``BatchJudge.judge_report`` on every report and ``annotate`` on batches of
  ``--batch`` reports: the stream, the detectors, and the judgment as JSON; in a run this
  happens in the training thread, at each ``rescue.report``.

    python bench/judging.py [--reports 20000] [--batch 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from pathlib import Path

from rescue.config import Target
from rescue.detectors.run_monitor import RunMonitor
from rescue.detectors.stream import MetricStream
from rescue.kinds import MetricKinds
from rescue.policy import load_policy
from rescue.worker.judging import JUDGED_KEY, BatchJudge, judgments

RESULTS = Path(__file__).resolve().parent / "results" / "judging.md"
POLICY = load_policy("default")
TARGETS = {"accuracy": Target(above=0.99)}  # never met: no finding ends the run early


def reports(n: int) -> list[dict]:
    """A healthy, noisy run of three metrics, as a training loop reports every step."""
    rng = random.Random(0)
    return [
        {
            "loss": 2.0 / math.sqrt(1 + i) * (1 + 0.2 * rng.random()),
            "accuracy": min(0.95, 0.5 + i / n / 2) + 0.02 * rng.random(),
            "grad_norm": 1.0 + 0.3 * rng.random(),
        }
        for i in range(n)
    ]


def watch() -> RunMonitor:
    return RunMonitor(POLICY, MetricStream(MetricKinds(), TARGETS), Path(os.devnull))


def driver_judges(run: list[dict], batch: int) -> float:
    w = watch()
    start = time.perf_counter()
    for metrics in run:
        w.on_report(metrics)
    return time.perf_counter() - start


def worker_judges(run: list[dict], batch: int) -> tuple[float, list[dict]]:
    judge = BatchJudge.build(watch().spec)
    assert judge is not None
    results = []
    start = time.perf_counter()
    for i in range(0, len(run), batch):
        chunk = run[i : i + batch]
        said = {k: s for k, m in enumerate(chunk) if (s := judge.judge_report(m)) is not None}
        results.append({JUDGED_KEY: judge.annotate(said, finished=False)})
    return time.perf_counter() - start, results


def driver_takes(run: list[dict], batch: int, results: list[dict]) -> float:
    w = watch()
    start = time.perf_counter()
    for k, result in enumerate(results):
        chunk = run[k * batch : (k + 1) * batch]
        for metrics, said in zip(chunk, judgments(result, len(chunk)) or [], strict=True):
            w.on_report(metrics, said)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    run = reports(args.reports)
    times: dict[str, list[float]] = {"driver judges": [], "worker judges": [], "driver takes": []}
    for _ in range(args.repeats):
        times["driver judges"].append(driver_judges(run, args.batch))
        spent, results = worker_judges(run, args.batch)
        times["worker judges"].append(spent)
        times["driver takes"].append(driver_takes(run, args.batch, results))
    per = {k: [1e6 * t / args.reports for t in v] for k, v in times.items()}
    rows = [
        f"| {name} | {statistics.median(us):.1f} | {', '.join(f'{u:.1f}' for u in us)} |"
        for name, us in per.items()
    ]
    ratio = statistics.median(per["driver judges"]) / statistics.median(per["driver takes"])
    text = "\n".join(
        [
            f"# Where a run is judged ({args.reports} reports of 3 metrics, batches of "
            f"{args.batch}, {args.repeats} alternating repeats, {time.strftime('%Y-%m-%d')})",
            "",
            "| | median µs per report | repeats |",
            "|---|---|---|",
            *rows,
            "",
            f"The driver's cost per report, judging the run itself against taking its "
            f"worker's judgment: {ratio:.1f}x.",
            "",
        ]
    )
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
