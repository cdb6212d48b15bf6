"""Supervision overhead on a healthy run, side by side in one process: the same ``train``
called directly; under bare Ray Tune with one Tune result per report (how rescue sent reports
before they travelled in batches); under bare Ray Tune with rescue's worker (reports in
batches); and under rescue (Ray Tune + streaming + detectors + Optuna, and the report page at
the end). Repeated, alternating, medians reported, at two run lengths.

    python bench/overhead.py [--repeats 3] [--epochs 30,300]
    python bench/overhead.py --processes [--repeats 3] [--epochs 1000]

``--processes`` measures what a user sees instead: ``python train.py`` against
``rescue train.py --config cfg.yaml`` (the console script, report page drawn), each a fresh
process, rescue starting its own Ray (its start-up included), alternating. Beside them, the
floor of any supervisor built on Ray Tune: a fresh process that starts Ray, runs ``train`` as
one bare Ray Tune trial (rescue's batching worker, Tune's auto loggers off) and stops Ray.
``--before SRC`` adds the same command run from another checkout's ``src`` (an earlier
version), in the same alternation, for a side-by-side comparison.

    python bench/overhead.py --processes --epochs 1700 --before /tmp/old/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
from ray import tune

from per_report import each_report_train

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lstm_divergence"
SCRIPT = EXAMPLE / "train.py"
HEALTHY_LR = 0.13


def direct(params):
    sys.path.insert(0, str(EXAMPLE))
    from rescue.worker.entrypoint import load_entry

    load_entry(EXAMPLE / "train.py", "train")(params)


def bare_tune_of(script, params, storage, batched=True):
    """``train(config)`` of ``script`` as one bare Ray Tune trial: with rescue's worker
    (reports in batches) or with one Tune result per report."""
    from rescue.worker.tune_sink import run_user_train

    trainable = tune.with_parameters(
        run_user_train if batched else each_report_train, script=str(script), entry="train"
    )
    tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=params,
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()


def under_rescue(cfg_path, out):
    from rescue.cli.main import main

    assert main([str(EXAMPLE / "train.py"), "--config", str(cfg_path), "--out", out, "-q"]) == 0


def healthy_cfg(epochs: int, folder: Path) -> tuple[dict, Path]:
    """The example's params at a healthy lr and ``epochs``, and a cfg.yaml for them."""
    import yaml

    cfg = yaml.safe_load((EXAMPLE / "cfg.yaml").read_text())
    cfg["params"].update(lr=HEALTHY_LR, epochs=epochs)
    # The example declares its 30-report length; here the run is as long as asked.
    cfg.setdefault("budget", {})["reports_per_run"] = epochs
    path = folder / f"cfg{epochs}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return dict(cfg["params"]), path


# What the `rescue` console script runs, also for a version from before it had `run`.
CONSOLE = (
    "import sys, rescue.cli.main as m; "
    "sys.exit(m.run() if hasattr(m, 'run') else m.main(sys.argv[1:]))"
)


def as_processes(repeats: int, epochs_list: list[int], page: bool, before: Path | None) -> str:
    """``python train.py`` vs ``rescue train.py``, fresh processes, alternating."""
    tmp = Path(tempfile.mkdtemp())
    rescue = [sys.executable, "-c", CONSOLE]
    env_before = {**os.environ, "PYTHONPATH": str(before)} if before else None
    lines = [
        f"# Supervision overhead as a user sees it (healthy lstm_divergence run, lr {HEALTHY_LR}, "
        f"fresh processes, {repeats} alternating repeats, {time.strftime('%Y-%m-%d')}; "
        f"{'report page drawn' if page else '--no-page'})",
        "",
        "| epochs | how | median wall s | min-max s | vs direct |",
        "|---|---|---|---|---|",
    ]
    for epochs in epochs_list:
        params, cfg_path = healthy_cfg(epochs, tmp)
        options = [str(SCRIPT), "--config", str(cfg_path), "-q"]
        options += [] if page else ["--no-page"]
        argv = {
            "python train.py (direct)": [sys.executable, str(SCRIPT)]
            + [f"{k}={v}" for k, v in params.items()],
            "bare Ray Tune trial (its own Ray)": [
                sys.executable,
                __file__,
                "--bare-process",
                str(cfg_path),
            ],
            "rescue train.py (its own Ray)": rescue + options,
        }
        if before:
            argv[f"rescue train.py, from {before}"] = rescue + options
        times: dict[str, list[float]] = {name: [] for name in argv}
        for i in range(repeats):
            for k, (name, command) in enumerate(argv.items()):
                if not name.startswith("python"):
                    command = command + ["--out", str(tmp / f"r{epochs}-{i}-{k}")]
                env = env_before if name.endswith(str(before)) else None
                start = time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["python train.py (direct)"])
        for name, values in times.items():
            m = statistics.median(values)
            lines.append(
                f"| {epochs} | {name} | {m:.2f} | {min(values):.2f}-{max(values):.2f} "
                f"| {m / base:.2f}x |"
            )
    return "\n".join(lines) + "\n"


def bare_process(cfg_path: Path, out: str) -> None:
    """One bare Ray Tune trial of the example in this fresh process, with its own Ray."""
    import yaml

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    params = yaml.safe_load(cfg_path.read_text())["params"]
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    bare_tune_of(SCRIPT, params, str(Path(out).resolve()))
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", default=None, help="run lengths, comma-separated")
    parser.add_argument("--processes", action="store_true", help="fresh processes, own Ray")
    parser.add_argument("--no-page", action="store_true", help="--processes: rescue --no-page")
    parser.add_argument("--before", type=Path, help="--processes: also an earlier version's src")
    parser.add_argument("--bare-process", type=Path, help=argparse.SUPPRESS)  # CFG, with --out
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    if args.bare_process:
        bare_process(args.bare_process, args.out)
        return
    if args.processes:
        epochs = [int(e) for e in (args.epochs or "1000").split(",")]
        text = as_processes(args.repeats, epochs, not args.no_page, args.before)
        print(text)
        (ROOT / "bench" / "results" / "overhead_processes.md").write_text(text)
        return

    tmp = Path(tempfile.mkdtemp())
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    lines = [
        f"# Supervision overhead (healthy lstm_divergence run, lr {HEALTHY_LR}, "
        f"{args.repeats} alternating repeats, {time.strftime('%Y-%m-%d')})",
        "",
        "| epochs | how | median wall s | vs direct | vs bare Ray Tune (batched) "
        "| rescue - bare Ray Tune (batched) |",
        "|---|---|---|---|---|---|",
    ]
    for epochs in (int(e) for e in (args.epochs or "30,300").split(",")):
        params, cfg_path = healthy_cfg(epochs, tmp)
        each, batched = "bare Ray Tune, a result per report", "bare Ray Tune (batched)"
        times: dict[str, list[float]] = {"direct": [], each: [], batched: [], "rescue": []}
        for i in range(args.repeats):
            runs = (
                ("direct", lambda p=params: direct(dict(p))),
                (
                    each,
                    lambda p=params, d=tmp / f"e{epochs}-{i}": bare_tune_of(
                        SCRIPT, dict(p), str(d), False
                    ),
                ),
                (
                    batched,
                    lambda p=params, d=tmp / f"t{epochs}-{i}": bare_tune_of(
                        SCRIPT, dict(p), str(d)
                    ),
                ),
                ("rescue", lambda c=cfg_path, d=tmp / f"r{epochs}-{i}": under_rescue(c, str(d))),
            )
            for name, fn in runs:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["direct"])
        tune_t = statistics.median(times[batched])
        extra = statistics.median(times["rescue"]) - tune_t
        for name, values in times.items():
            m = statistics.median(values)
            cost = f"{extra:+.2f} s" if name == "rescue" else ""
            lines.append(
                f"| {epochs} | {name} | {m:.2f} | {m / base:.2f}x | {m / tune_t:.2f}x | {cost} |"
            )
    ray.shutdown()
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "overhead.md").write_text(text)


if __name__ == "__main__":
    main()
