"""The restart gap: from the stop of a run to the first report of the run that restarts it,
split into what rescue takes (from the driver's decision to stop, through the next config and
Ray Tune's next trial, to the next run's ``train`` entry) and what the script takes to set
itself up (entry to first report). A diverging regression at lr 0.9
(tests/scripts/sgd_regression.py, with ``timing``) is rescued by the real command, several
times; every gap is counted. The decision's time is taken in this process, where the
supervisor runs, by wrapping ``RunMonitor.on_report``.

    python bench/restart_gap.py [--rescues 3] [--label NAME]

``--label`` names the row, so that another version of rescue (given with PYTHONPATH) can be
measured into the same table, one run after the other.
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


def gaps(timing: Path, stops: list[float]) -> list[tuple[float, float]]:
    """(rescue's share, the script's set-up) for each restart in ``timing``: from the stop
    decision before a run's start to its ``train`` entry, and from there to its first report."""
    runs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in timing.read_text().splitlines():
        run, event, at = line.split()
        runs[run][event].append(float(at))
    ordered = sorted(runs.values(), key=lambda r: r["start"][0])
    found = []
    for after in ordered[1:]:
        start = after["start"][0]
        before = [s for s in stops if s < start]
        if before and after["report"]:
            found.append((start - before[-1], after["report"][0] - start))
    return found


def record_stops() -> list[float]:
    """The wall time of every stop decision the supervisor makes in this process."""
    from rescue.detectors.run_monitor import RunMonitor

    stops: list[float] = []
    on_report = RunMonitor.on_report

    def timed(self, metrics, judged=None):
        stop = on_report(self, metrics, judged)
        if stop:
            stops.append(time.time())
        return stop

    RunMonitor.on_report = timed
    return stops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rescues", type=int, default=3)
    parser.add_argument("--label", default="this version")
    args = parser.parse_args()
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    from rescue.cli.main import main as rescue_main

    stops = record_stops()
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
        found += gaps(timing, stops)
    ray.shutdown()
    ours, setup = [g[0] for g in found], [g[1] for g in found]
    row = (
        f"| {args.label} | {time.strftime('%Y-%m-%d %H:%M')} | {len(found)} "
        f"| {statistics.median(ours):.2f} ({min(ours):.2f}-{max(ours):.2f}) "
        f"| {statistics.median(setup):.2f} ({min(setup):.2f}-{max(setup):.2f}) |"
    )
    rows = [r for r in _rows() if not r.startswith(f"| {args.label} |")] + [row]
    lines = [
        f"# The restart gap (restarts of a diverging regression, {args.rescues} rescues a row)",
        "",
        "Seconds, median (min-max). Rows measured one after the other on this machine.",
        "",
        "| version | when | restarts | stop decision to the next run's `train` entry "
        "| `train` entry to its first report (the script's set-up) |",
        "|---|---|---|---|---|",
        *rows,
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _rows() -> list[str]:
    """The rows already measured (other versions)."""
    if not RESULTS.is_file():
        return []
    lines = RESULTS.read_text().splitlines()
    return [line for line in lines if line.startswith("| ") and not line.startswith("| version")]


if __name__ == "__main__":
    sys.exit(main())
