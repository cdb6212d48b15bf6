"""The cost per report, side by side in one process: a run that reports every step of a tiny
model, called directly, under bare Ray Tune with one result per report (how rescue sent
reports before batching), under bare Ray Tune with rescue's worker (reports in batches), and
under rescue. Alternating repeats, medians.

    python bench/report_rate.py [--steps 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import bare_tune_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "scripts" / "tiny_steps.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    from rescue.cli.main import main as rescue_main
    from rescue.worker.entrypoint import load_entry
    from rescue.worker.reporting import PrintSink, install_sink

    tmp = Path(tempfile.mkdtemp())
    params = {"lr": 0.05, "steps": args.steps}
    cfg = tmp / "cfg.yaml"
    knobs = {"lr": {"role": "learning_rate", "low": 1e-4, "high": 1.0, "log": True}}
    cfg.write_text(yaml.safe_dump({"params": params, "knobs": knobs, "budget": {"restarts": 0}}))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)

    class Quiet(PrintSink):
        def report(self, metrics, checkpoint):
            pass

    def direct():
        previous = install_sink(Quiet())
        load_entry(SCRIPT, "train")(dict(params))
        install_sink(previous)

    def rescued(i):
        out = str(tmp / f"r{i}")
        code = rescue_main([str(SCRIPT), "--config", str(cfg), "--out", out, "-q", "--no-page"])
        assert code == 0, code

    each, batched = "bare Ray Tune, a result per report", "bare Ray Tune (batched)"
    times: dict[str, list[float]] = {"direct": [], each: [], batched: [], "rescue": []}
    for i in range(args.repeats):
        runs = (
            ("direct", direct),
            (each, lambda i=i: bare_tune_of(SCRIPT, dict(params), str(tmp / f"e{i}"), False)),
            (batched, lambda i=i: bare_tune_of(SCRIPT, dict(params), str(tmp / f"b{i}"), True)),
            ("rescue", lambda i=i: rescued(i)),
        )
        for name, fn in runs:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ray.shutdown()
    base = statistics.median(times["direct"])
    lines = [
        f"# Cost per report ({args.steps} reports of a tiny model, {args.repeats} alternating "
        f"repeats, {time.strftime('%Y-%m-%d')})",
        "",
        "| how | median wall s | vs direct | ms per report over direct |",
        "|---|---|---|---|",
    ]
    for name, values in times.items():
        m = statistics.median(values)
        per = (m - base) / args.steps * 1000
        lines.append(f"| {name} | {m:.2f} | {m / base:.1f}x | {per:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "report_rate.md").write_text(text)


if __name__ == "__main__":
    main()
