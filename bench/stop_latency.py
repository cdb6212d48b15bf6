"""How much a sick run trains after its verdict: the reports it makes between the report that
gave the verdict and its end. The real command, on a run that diverges (the integration test's
MLP at lr 0.9, 10 ms steps, a report every step), no restart; alternating with another version
of rescue given as a source folder (``--before SRC``, run with ``PYTHONPATH=SRC``).

    python bench/stop_latency.py [--before SRC] [--repeats 5] [--step-seconds 0.01]

The reports are counted where they are made (the script notes each call of ``rescue.report``
in a timing file): those a run made after its verdict and never sent count too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "sgd_regression.py"
RESULTS = ROOT / "bench" / "results" / "stop_latency.md"


def once(src: Path | None, step_seconds: float, tmp: Path) -> tuple[int, int]:
    """(reports after the verdict's, the verdict's report index) of one rescue."""
    cfg, timing = tmp / "cfg.yaml", tmp / f"timing-{time.monotonic_ns()}.txt"
    cfg.write_text(
        f"params: {{lr: 0.9, steps: 3000, seed: 0, step_seconds: {step_seconds}, "
        f"report_every: 1, timing: '{timing}'}}\n"
        "knobs:\n  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}\n"
        "success:\n  loss: {below: 0.05}\nbudget: {restarts: 0}\n"
    )
    out = tmp / f"out-{time.monotonic_ns()}"
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [sys.executable, "-m", "rescue.cli.main", str(SCRIPT), "--config", str(cfg)]
    command += ["--out", str(out), "-q", "--no-page"]
    subprocess.run(command, env=env, check=False, capture_output=True)
    (run,) = json.loads((out / "report.json").read_text())["runs"]
    step = run["findings"][0]["step"]
    calls = sum(" report " in line for line in timing.read_text().splitlines())
    return calls - (step + 1), step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="another version's src folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--step-seconds", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    versions: dict[str, Path | None] = {"this version": None}
    if args.before is not None:
        versions[f"before ({args.before})"] = args.before
    rows: dict[str, list[tuple[int, int]]] = {name: [] for name in versions}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            for name, src in versions.items():
                rows[name].append(once(src, args.step_seconds, Path(folder)))
    lines = [
        f"# Reports a sick run makes after its verdict ({args.repeats} alternating repeats, "
        f"{1000 * args.step_seconds:g} ms steps, {time.strftime('%Y-%m-%d')})",
        "",
        "| version | median reports after the verdict | each (after, verdict at) |",
        "|---|---|---|",
    ]
    for name, found in rows.items():
        each = ", ".join(f"{a} (at {s})" for a, s in found)
        lines.append(f"| {name} | {statistics.median(a for a, _ in found):g} | {each} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
