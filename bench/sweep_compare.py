"""rescue sweep against a plain Optuna sweep, on a scenario with a real failure region.

The scenario is tests/scripts/sgd_regression.py (an MLP fitted by SGD with momentum, whose loss
climbs above a learning rate of about 0.1) with lr searched over log-uniform [1e-4, 1.0] and the
objective the last full-batch loss (success: below 0.05). Both sweeps get the same trial budget
and the same TPE sampler settings (seed, random start):

- rescue sweep: trials under Ray Tune, 2 at a time, watched by the default policy; a diagnosed
  trial is stopped and told to the study as infeasible.
- plain Optuna: TPE + MedianPruner on the same intermediate loss, trials run in-process one
  after another; a completed trial is told its last loss (non-finite: failed).

Compute is counted in training reports (one per 5 SGD steps). "At equal compute" is the best
healthy loss each reached within the smaller of the two sweeps' total reports, trials taken in
the order they were asked.

    python bench/sweep_compare.py [--trials 20] [--seeds 0 1 2] [--rescue-sick] [--out FILE]

writes bench/results/sweep_compare.md (or FILE). ``--rescue-sick``: the rescue sweep restarts
a diagnosed trial once with its remedy (``rescue sweep --rescue-sick``), inside the same trial
budget.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "sgd_regression.py"
CFG = """\
params: {lr: 0.01, steps: 300, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-4, high: 1.0, log: true}
success:
  loss: {below: 0.05}
"""


def rescue_sweep(trials: int, seed: int, work: Path, rescue_sick: bool = False) -> list[dict]:
    """Per trial, in the order asked: reports, and the objective if it ended healthy."""
    from rescue.cli.main import main

    cfg = work / "cfg.yaml"
    cfg.write_text(CFG)
    out = work / f"rescue-{seed}"
    argv = ["sweep", str(SCRIPT), "--config", str(cfg), "--out", str(out), "-q"]
    argv += ["--rescue-sick"] if rescue_sick else []
    main([*argv, "--trials", str(trials), "--parallel", "2", "--seed", str(seed)])
    report = json.loads((out / "report.json").read_text())
    by_run = {t["trial"]: t for t in report["trials"]}
    return [
        {
            "lr": by_run[r]["params"]["lr"],
            "reports": by_run[r]["reports"],
            "healthy": by_run[r]["status"] == "healthy",
            "value": by_run[r]["objective"],
            "stopped": by_run[r]["status"] == "diagnosed",
        }
        for r in sorted(by_run)
    ]


class _TrialSink:
    """rescue.report inside an Optuna objective: intermediate values and pruning."""

    def __init__(self, trial) -> None:
        self.trial, self.step, self.last = trial, 0, math.nan

    def report(self, metrics, checkpoint) -> None:
        import optuna

        self.last = float(metrics["loss"])
        if math.isfinite(self.last):
            self.trial.report(self.last, self.step)
        self.step += 1
        if self.trial.should_prune():
            raise optuna.TrialPruned()

    def get_checkpoint(self, weights_only=True):
        return None


def plain_optuna(trials: int, seed: int) -> list[dict]:
    import optuna

    from rescue.search.study import startup_trials
    from rescue.worker.entrypoint import load_entry
    from rescue.worker.reporting import install_sink

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    train = load_entry(SCRIPT, "train")
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(trials)),
        pruner=optuna.pruners.MedianPruner(),
    )
    rows: list[dict] = []

    def objective(trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        sink = _TrialSink(trial)
        previous = install_sink(sink)
        row = {"lr": lr, "reports": 0, "healthy": False, "value": None, "stopped": False}
        rows.append(row)
        try:
            train({"lr": lr, "steps": 300, "seed": 0})
        except optuna.TrialPruned:
            row["stopped"] = True
            raise
        finally:
            install_sink(previous)
            row["reports"] = sink.step
        row["healthy"] = math.isfinite(sink.last)
        row["value"] = sink.last if row["healthy"] else None
        return sink.last

    study.optimize(objective, n_trials=trials, catch=())
    return rows


def best_within(rows: list[dict], budget: float) -> float | None:
    """The best healthy loss among the trials done within ``budget`` reports, in order."""
    spent, best = 0, None
    for row in rows:
        spent += row["reports"]
        if spent > budget:
            break
        if row["healthy"] and row["value"] is not None:
            best = row["value"] if best is None else min(best, row["value"])
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rescue-sick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sweep_compare.md")
    args = parser.parse_args()
    method = "rescue sweep --rescue-sick" if args.rescue_sick else "rescue sweep"

    import ray

    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rescue_rows = rescue_sweep(args.trials, seed, Path(tmp), args.rescue_sick)
            plain_rows = plain_optuna(args.trials, seed)
            equal = min(
                sum(r["reports"] for r in rescue_rows), sum(r["reports"] for r in plain_rows)
            )
            for name, rows in ((method, rescue_rows), ("plain Optuna", plain_rows)):
                results.append(
                    {
                        "seed": seed,
                        "method": name,
                        "reports": sum(r["reports"] for r in rows),
                        "stopped": sum(r["stopped"] for r in rows),
                        "sick_sampled": sum(r["lr"] > 0.1 for r in rows),
                        "best": best_within(rows, math.inf),
                        "best_equal": best_within(rows, equal),
                        "equal": equal,
                    }
                )
                print(results[-1], file=sys.stderr)
    ray.shutdown()
    write(results, args.trials, method, args.out)


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def write(results: list[dict], trials: int, method: str, out: Path) -> None:
    lines = [
        "# rescue sweep vs plain Optuna (TPE + MedianPruner)",
        "",
        f"`python bench/sweep_compare.py` — sgd_regression, lr log-uniform [1e-4, 1.0] (diverges "
        f"above ~0.1), {trials} trials per sweep, same TPE seed and random start. Loss = last "
        "full-batch MSE (lower is better); compute = training reports.",
        "",
        "| seed | method | total reports | trials stopped early | trials with lr > 0.1 | "
        "best healthy loss | best healthy loss at equal compute (reports) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['seed']} | {r['method']} | {r['reports']} | {r['stopped']} | "
            f"{r['sick_sampled']} | {_fmt(r['best'])} | {_fmt(r['best_equal'])} ({r['equal']}) |"
        )
    lines.append("")
    for name in (method, "plain Optuna"):
        rows = [r for r in results if r["method"] == name]
        reports = statistics.mean(r["reports"] for r in rows)
        bests = [r["best_equal"] for r in rows if r["best_equal"] is not None]
        mean = f"{statistics.mean(bests):.4f}" if bests else "none"
        lines.append(
            f"- {name}: mean total reports {reports:.0f}, mean best healthy loss at equal "
            f"compute {mean} over {len(rows)} seeds"
        )
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
