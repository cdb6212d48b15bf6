"""The hot path: what reporting costs a training loop, timed inside the run (watch off, three
metrics a report), side by side in one process, for a loop that does nothing but report and
for one whose steps take ``--work-us`` microseconds of busy work:

- bare call: ``rescue.report`` with a sink that drops the report (normalising the metrics, no
  Ray): the call's own cost;
- under rescue: the real command; the report goes to rescue's batching worker, and from there
  to Ray Tune and the driver's detectors in another process.

The figure is the loop's time per report less the step's work. A loop that only reports runs
at the pace the driver takes reports (the worker holds at most two batches); a loop whose
steps take longer than that pays only the call. Alternating repeats, medians.

    python bench/hot_path.py [--reports 20000] [--work-us 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "scripts" / "report_loop.py"
RESULTS = ROOT / "bench" / "results" / "hot_path.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=20000)
    parser.add_argument("--work-us", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    from rescue.cli.main import main as rescue_main
    from rescue.worker.entrypoint import load_entry
    from rescue.worker.reporting import PrintSink, install_sink

    tmp = Path(tempfile.mkdtemp())
    timing = tmp / "timing.jsonl"

    class Dropped(PrintSink):
        def report(self, metrics, checkpoint):
            pass

    def bare(params: dict) -> None:
        previous = install_sink(Dropped())
        try:
            load_entry(SCRIPT, "train")(params)
        finally:
            install_sink(previous)

    def rescued(params: dict, i: int) -> None:
        cfg = tmp / "cfg.yaml"
        knobs = {"lr": {"role": "learning_rate", "low": 1e-4, "high": 1.0, "log": True}}
        spec = {"params": {**params, "lr": 0.01}, "knobs": knobs, "budget": {"restarts": 0}}
        cfg.write_text(yaml.safe_dump(spec))
        out = str(tmp / f"r{i}")
        code = rescue_main([str(SCRIPT), "--config", str(cfg), "--out", out, "-q", "--no-page"])
        assert code == 0, code

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    rows: dict[tuple[int, str], list[float]] = {}
    n = 0
    for _ in range(args.repeats):
        for work in (0, args.work_us):
            params = {"reports": args.reports, "timing": str(timing), "work_us": work}
            for how in ("bare call", "under rescue"):
                timing.unlink(missing_ok=True)
                if how == "bare call":
                    bare(params)
                else:
                    rescued(params, n)
                    n += 1
                (row,) = [json.loads(line) for line in timing.read_text().splitlines()]
                cost = 1e6 * row["seconds"] / row["reports"] - work
                rows.setdefault((work, how), []).append(cost)
    ray.shutdown()
    lines = [
        f"# The hot path: reporting inside the run ({args.reports} reports of 3 metrics, watch "
        f"off, {args.repeats} alternating repeats, {time.strftime('%Y-%m-%d')})",
        "",
        "| step's own work | how | median µs per report over the work | repeats |",
        "|---|---|---|---|",
    ]
    for (work, how), values in rows.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        step = "none (only reports)" if not work else f"{work} µs"
        lines.append(f"| {step} | {how} | {statistics.median(values):.1f} | {runs} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
