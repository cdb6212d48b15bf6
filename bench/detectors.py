"""Detector benchmark: detection latency on the seed fixtures, false alarms on the healthy
corpus (real small torch runs), and the cost per report of the whole default detector set.

    python bench/detectors.py            # prints a markdown table; also bench/results/detectors.md
"""

from __future__ import annotations

import math
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import healthy_runs  # noqa: E402
import seed_fixtures  # noqa: E402
from rescue.config import Target  # noqa: E402
from rescue.detectors.run_monitor import replay_run  # noqa: E402
from rescue.detectors.stream import MetricStream  # noqa: E402
from rescue.kinds import MetricKinds  # noqa: E402
from rescue.policy import load_policy  # noqa: E402

# (fixture, the report where the failure is visible to a person, expected signature, targets)
SEEDS = [
    ("002 LSTM divergence", seed_fixtures.seed_002_divergence, 1, "divergence", None),
    ("003 dead discrete head", seed_fixtures.seed_003_dead_head, 4, "opposing_losses", None),
    ("004 value loss explodes", seed_fixtures.seed_004_explosion, 0, "explosion", None),
    ("004 value loss stuck at 1.0", seed_fixtures.seed_004_stuck, 0, "stuck_constant", None),
    (
        "004 block/allow everything",
        seed_fixtures.seed_004_confusion,
        0,
        "class_collapse",
        {"f1": Target(above=0.5)},
    ),
    ("001 collapse onto Panic", seed_fixtures.seed_001_panic, 0, "class_collapse", None),
    ("001 uniform predictions", seed_fixtures.seed_001_uniform, 0, "uniform_collapse", None),
]


def watch_all(reports, targets=None, completed=True):
    return replay_run(load_policy("default"), reports, targets=targets, completed=completed)


def seed_rows():
    rows = []
    for label, fixture, visible, expected, targets in SEEDS:
        watch = watch_all(fixture(), targets)
        verdict = watch.verdict
        got = verdict.signature if verdict else "none"
        latency = verdict.step - visible if verdict else math.nan
        rows.append(
            (label, expected, got, got == expected, visible, verdict and verdict.step, latency)
        )
    return rows


def healthy_rows(seeds=(0, 1, 2)):
    rows = []
    for name, fn in healthy_runs.CORPUS.items():
        alarms = 0
        for seed in seeds:
            watch = watch_all(fn(seed), completed=True)
            alarms += sum(f.action == "restart" for f in watch.findings)
        rows.append((name, len(seeds), alarms))
    return rows


def cost_per_report(n=20000, metrics=6):
    """All default detectors on a long noisy run with several losses, a score, a gradient norm,
    entropy, KL and a class-usage vector: microseconds per report, early and late in the run."""
    rng = random.Random(0)
    policy = load_policy("default")
    stream = MetricStream(MetricKinds())
    detectors = policy.detectors()

    def report(i):
        base = 1.0 / (1 + i / 500)
        row = {f"loss_{k}": base * (1 + 0.2 * rng.random()) for k in range(metrics - 4)}
        # A flat noisy score: no detector's score guard cuts its work short (the worst case).
        row.update(acc=0.7 + 0.05 * rng.random(), grad_norm=1 + rng.random(), entropy=1.0, kl=0.3)
        row["pred_usage"] = [0.4, 0.3, 0.3]
        return row

    rows = [report(i) for i in range(n)]
    timings = []
    for chunk in range(0, n, n // 4):
        start = time.perf_counter()
        for metrics_row in rows[chunk : chunk + n // 4]:
            stream.append(metrics_row)
            for detector in detectors:
                detector.on_report(stream)
        timings.append((time.perf_counter() - start) / (n // 4) * 1e6)
    return timings, len(detectors)


def main() -> None:
    lines = [
        "# Detector benchmark",
        "",
        f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "",
        "## Seed failures (fixtures from the post-mortems' printed numbers)",
        "",
        "| seed failure | expected | diagnosed | right | visible at | confirmed at | latency |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, expected, got, ok, visible, step, latency in seed_rows():
        lines.append(
            f"| {label} | {expected} | {got} | {'yes' if ok else 'NO'} | {visible} | {step} | "
            f"{latency} |"
        )
    lines += [
        "",
        "Latency is in reports, from the report where the failure is first visible in the",
        "printed numbers to the report where the detector confirmed it.",
        "",
        "## Healthy corpus (real small torch runs): restart-worthy findings",
        "",
        "| curve | runs | false alarms |",
        "|---|---|---|",
    ]
    for name, runs, alarms in healthy_rows():
        lines.append(f"| {name} | {runs} | {alarms} |")
    timings, count = cost_per_report()
    lines += [
        "",
        f"## Cost per report, all {count} default detectors, 20,000-report run, 9 metrics",
        "",
        "| reports 0-5k | 5k-10k | 10k-15k | 15k-20k |",
        "|---|---|---|---|",
        "| " + " | ".join(f"{t:.0f} µs" for t in timings) + " |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "detectors.md").write_text(text)


if __name__ == "__main__":
    main()
