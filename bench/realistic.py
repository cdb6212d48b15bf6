"""rescue against search over a realistic space: the knobs a real config has, not one or two.

bench/compare.py gives every contender the knobs each example's cfg.yaml lists (1-3). A real
config has more: weight decay, batch size, clipping, dropout, loss weights. Here each example's
knobs are widened with the params its train.py already reads (bench/realistic_space.yaml, at
least 5 knobs per scenario), and every contender gets that space and the same budget of runs:

- rescue: the real supervisor, default policy; its remedies decide which knobs to move;
- optuna_tpe: Optuna TPE + MedianPruner, in-process, first trial = the broken params;
- asha: Ray Tune ASHA, first trial = the broken params;
- diagnosis_kill: ``rescue sweep`` (TPE under Ray Tune; a trial the detectors diagnose is
  stopped and told to the study as infeasible, never restarted): the diagnosis-kill search of
  BTTackler (KDD'24).

Compute to success = all reports of all runs launched until the first run that completed and
met ``success`` (a seed that never got there counts what it spent, shown as a lower bound).

    python bench/realistic.py                           # every scenario, 2 seeds
    python bench/realistic.py --scenarios nk_policy --seeds 1
    python bench/realistic.py --render                  # rewrite the results from the json

Writes bench/results/realistic.json (merged across invocations) and realistic.md after every
seed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import optuna
import ray
import yaml

import compare
from compare import HEALTHY, Outcome, Run, Scenario
from rescue.config import BUILTIN_ROLES, load_config

SPACE_FILE = compare.ROOT / "bench" / "realistic_space.yaml"
CONTENDERS = ("rescue", "optuna_tpe", "asha", "diagnosis_kill")
SEARCHERS = ("optuna_tpe", "asha", "diagnosis_kill")


def widened(name: str, extra: dict[str, Any], runs: int, tmp: Path) -> Scenario:
    """The example with ``extra`` added to its knobs and a budget of ``runs`` runs."""
    base = compare.load_scenario(name)
    raw = json.loads(json.dumps(base.raw))
    missing = [k for k in extra if k not in raw["params"]]
    if missing:
        raise SystemExit(f"{SPACE_FILE}: {name} has no params {missing} to search")
    raw["knobs"] = {**raw["knobs"], **extra}
    raw.setdefault("budget", {})["restarts"] = runs - 1
    path = tmp / f"cfg-{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return Scenario(name, base.folder, raw, load_config(path, roles=BUILTIN_ROLES))


def diagnosis_kill(sc: Scenario, seed: int, tmp: Path) -> Outcome:
    """``rescue sweep`` with its defaults (no in-place rescues), one trial at a time. A sweep
    runs its whole budget; the trials after the first success are not counted."""
    from rescue.cli.main import main

    raw = json.loads(json.dumps(sc.raw))
    if sc.has_seed:
        raw["params"]["seed"] = seed
    cfg = tmp / f"sweep-{sc.name}-{seed}.yaml"
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    out_dir = tmp / f"sweep-{sc.name}-{seed}"
    args = ["sweep", str(sc.script), "--config", str(cfg), "--out", str(out_dir), "-q"]
    args += ["--trials", str(sc.budget_runs), "--parallel", "1", "--seed", str(seed)]
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        main(args)
    out = Outcome("diagnosis_kill", seed, seconds=time.perf_counter() - start)
    trials = sorted(
        json.loads((out_dir / "report.json").read_text())["trials"], key=lambda t: t["trial"]
    )
    for t in trials:
        status = {"healthy": "completed", "diagnosed": "stopped"}.get(t["status"], t["status"])
        note = t["signature"] or ""
        out.runs.append(Run(t["params"], t["reports"], status, bool(t["met_success"]), 0.0, note))
        if t["met_success"]:
            out.success = True
            break
    left = len(trials) - len(out.runs)
    out.note = f"{left} later trial(s) not counted" if left else ""
    return out


def run_contender(contender: str, sc: Scenario, seed: int, run_length: int, tmp: Path) -> Outcome:
    if contender == "rescue":
        return compare.rescue_contender(sc, seed, tmp)
    if contender == "optuna_tpe":
        return compare.optuna_tpe(sc, seed, run_length)
    if contender == "asha":
        return compare.asha(sc, seed, run_length, tmp / "ray")
    return diagnosis_kill(sc, seed, tmp)


# ---------------------------------------------------------------- results


def cost(outcome: Outcome) -> float:
    """Reports to success; what it spent when it never got there (a lower bound)."""
    return float(outcome.reports)


def median_cost(outcomes: list[Outcome]) -> tuple[float, bool]:
    """The median cost over seeds, and whether it is only a lower bound (a failed seed at or
    below the median)."""
    costs = sorted((cost(o), not o.success) for o in outcomes)
    value = statistics.median(c for c, _ in costs)
    censored = any(failed and c <= value for c, failed in costs)
    return value, censored


def _cost_cell(outcomes: list[Outcome]) -> str:
    value, censored = median_cost(outcomes)
    ok = sum(o.success for o in outcomes)
    return f"{ok}/{len(outcomes)}, {'≥' if censored else ''}{value:.0f} reports"


def headline_row(name: str, results: dict[str, list[Outcome]]) -> str:
    rescue_cost, rescue_censored = median_cost(results["rescue"])
    searchers = [(c, *median_cost(results[c])) for c in SEARCHERS if c in results]
    best, best_cost, best_censored = min(searchers, key=lambda s: s[1])
    ratio = best_cost / rescue_cost if rescue_cost else math.inf
    bound = "≥" if best_censored and not rescue_censored else ""
    if rescue_censored:
        bound = "?"  # rescue itself failed on a seed at or below its median
    oracle = statistics.median(o.reports for o in results["oracle"])
    cells = " | ".join(_cost_cell(results[c]) for c in CONTENDERS if c in results)
    return f"| {name} | {oracle:.0f} | {cells} | {best} | {bound}{ratio:.1f}x |"


def write_outputs(stored: dict[str, dict[str, Any]], out: Path, space: dict[str, Any]) -> None:
    minutes = sum(e["minutes"] for e in stored.values())
    lines = [
        "# rescue vs. search over a realistic space (at least 5 knobs per scenario)",
        "",
        f"{compare.machine()}. {minutes:.0f} min in all; raw numbers in "
        "[realistic.json](realistic.json); the space in "
        "[../realistic_space.yaml](../realistic_space.yaml).",
        "",
        "## Headline",
        "",
        "Per scenario and contender: seeds that reached success, then the median over seeds of "
        "the reports spent until the first run that completed meeting `success` (≥: a seed "
        "that never got there counts its whole spend, so the median is a lower bound). "
        "**best / rescue** = the best search contender's median over rescue's: how many times "
        "less compute rescue needed.",
        "",
        "| scenario | oracle reports | "
        + " | ".join(CONTENDERS)
        + " | best search contender | best / rescue |",
        "|---|---|" + "---|" * len(CONTENDERS) + "---|---|",
    ]
    for name in sorted(stored):
        lines.append(headline_row(name, stored[name]["results"]))
    lines += [
        "",
        "## Set-up",
        "",
        f"Budget: {space['runs']} runs per contender and seed, each at most one full run; all "
        "one run at a time, one CPU per run, on a Ray started with `num_cpus=2`. Seeds override "
        "`params.seed`. rescue: `rescue train.py --config cfg --seed SEED` with the default "
        "policy and `budget.restarts` = runs - 1. optuna_tpe and asha: as in "
        "[compare.md](compare.md) (TPE defaults + `MedianPruner(n_startup_trials=1, "
        "n_warmup_steps=30%)`; `ASHAScheduler(max_t=run length, grace_period=run length // 10, "
        "reduction_factor=3)`), their first trial the broken params. diagnosis_kill: `rescue "
        "sweep train.py --config cfg --trials RUNS --parallel 1 --seed SEED`, which draws its "
        "first trial from the space (it does not try the broken params first: one run fewer "
        "than the others would spend on them) and runs its whole budget; only the trials up to "
        "the first success are counted. Reports are the measure of compute, though not exact: "
        "a report's cost depends on the config (batch size is now a knob).",
        "",
    ]
    for name in sorted(stored):
        entry = stored[name]
        knobs = ", ".join(entry["knobs"])
        lines += [
            f"## {name}",
            "",
            f"{entry['date']}, {entry['source']}, `{entry['command'].strip()}`, "
            f"{entry['minutes']:.1f} min. Knobs ({len(entry['knobs'])}): {knobs}; fix: "
            f"{HEALTHY.get(name)}; run length {entry['run_length']} reports.",
            "",
            *compare.details(entry["scenario"], entry["results"], (*CONTENDERS, "oracle")),
            "",
        ]
    (out / "realistic.md").write_text("\n".join(lines))


def save(path: Path, stored: dict[str, dict[str, Any]]) -> None:
    plain = {n: {k: v for k, v in e.items() if k != "scenario"} for n, e in stored.items()}
    compare.save_raw(path, plain)


def load(path: Path, tmp: Path, space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stored = compare.load_raw(path)
    for name, entry in stored.items():
        entry["scenario"] = widened(name, space["scenarios"][name], space["runs"], tmp)
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", help="comma-separated example names (default: all)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per scenario")
    parser.add_argument("--render", action="store_true", help="only rewrite realistic.md")
    args = parser.parse_args()
    space = yaml.safe_load(SPACE_FILE.read_text())
    tmp = Path(tempfile.mkdtemp(prefix="rescue-realistic-"))
    raw_path = compare.RESULTS / "realistic.json"
    stored = load(raw_path, tmp, space)
    if args.render:
        write_outputs(stored, compare.RESULTS, space)
        return
    names = args.scenarios.split(",") if args.scenarios else list(space["scenarios"])
    command = "python bench/realistic.py " + " ".join(sys.argv[1:])
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        for name in names:
            sc = widened(name, space["scenarios"][name], space["runs"], tmp)
            started = time.perf_counter()
            results: dict[str, list[Outcome]] = {}
            entry: dict[str, Any] = {
                "date": date.today().isoformat(),
                "command": command,
                "source": compare.source_state(),
                "knobs": list(sc.config.knobs),
                "results": results,
                "scenario": sc,
            }
            compare.run_in_process(sc, sc.params(0), lambda step, metrics: True)  # warm-up
            for seed in range(args.seeds):
                orc = compare.oracle(sc, seed)
                results.setdefault("oracle", []).append(orc)
                entry["run_length"] = orc.reports
                for contender in CONTENDERS:
                    o = run_contender(contender, sc, seed, orc.reports, tmp)
                    results.setdefault(contender, []).append(o)
                    print(
                        f"{name} seed {seed} {contender}: "
                        f"{'success' if o.success else 'no success'}, {o.reports} reports, "
                        f"{len(o.runs)} runs, {o.seconds:.1f} s",
                        flush=True,
                    )
                entry["minutes"] = (time.perf_counter() - started) / 60
                stored[name] = entry  # after every seed: an interrupted run keeps it
                save(raw_path, stored)
                write_outputs(stored, compare.RESULTS, space)
    finally:
        ray.shutdown()
    print((compare.RESULTS / "realistic.md").read_text())


if __name__ == "__main__":
    main()
