"""The restart gap: from the last report of a stopped run to the first report of the run that
restarts it, split into what rescue takes (the stop, the next config, Ray Tune's new trial:
last report to the next run's ``train`` entry) and what the script takes to set itself up
(entry to first report). A diverging regression at lr 0.9 (tests/scripts/sgd_regression.py,
with ``timing``) is rescued by the real command, several times; every gap is counted.

    python bench/restart_gap.py [--rescues 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import ray
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "sgd_regression.py"
RESULTS = ROOT / "bench" / "results" / "restart_gap.md"


def gaps(timing: Path) -> list[tuple[float, float]]:
    """(rescue's share, the script's set-up) for each restart in ``timing``."""
    runs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in timing.read_text().splitlines():
        run, event, at = line.split()
        runs[run][event].append(float(at))
    ordered = sorted(runs.values(), key=lambda r: r["start"][0])
    found = []
    for before, after in zip(ordered, ordered[1:]):
        if before["report"] and after["report"]:
            start = after["start"][0]
            found.append((start - before["report"][-1], after["report"][0] - start))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rescues", type=int, default=3)
    args = parser.parse_args()
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    from rescue.cli.main import main as rescue_main

    tmp = Path(tempfile.mkdtemp())
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    found: list[tuple[float, float]] = []
    for i in range(args.rescues):
        timing = tmp / f"timing{i}.jsonl"
        params = {"lr": 0.9, "steps": 400, "step_seconds": 0.002, "timing": str(timing)}
        spec = {
            "params": params,
            "knobs": {"lr": {"role": "learning_rate", "low": 1e-5, "high": 1.0, "log": True}},
            "success": {"loss": {"below": 0.05}},
            "budget": {"restarts": 3},
        }
        cfg = tmp / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(spec))
        out = str(tmp / f"r{i}")
        rescue_main([str(SCRIPT), "--config", str(cfg), "--out", out, "-q", "--no-page"])
        found += gaps(timing)
    ray.shutdown()
    ours, setup = [g[0] for g in found], [g[1] for g in found]
    lines = [
        f"# The restart gap ({len(found)} restarts in {args.rescues} rescues of a diverging "
        f"regression, {time.strftime('%Y-%m-%d')})",
        "",
        "| from | to | median s | min-max s |",
        "|---|---|---|---|",
        f"| a stopped run's last report | the next run's `train` entry (rescue and Ray Tune) "
        f"| {statistics.median(ours):.2f} | {min(ours):.2f}-{max(ours):.2f} |",
        f"| the next run's `train` entry | its first report (the script's own set-up) "
        f"| {statistics.median(setup):.2f} | {min(setup):.2f}-{max(setup):.2f} |",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
