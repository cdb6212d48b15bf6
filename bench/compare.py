"""rescue against what a user would otherwise do with a broken run, on the shipped examples.

For each scenario (an example with ``train.py`` and ``cfg.yaml``) and seed, every contender
starts from the same broken params, searches the same knob domains and gets the same budget:
at most ``budget.restarts + 1`` runs, each at most one full run long.

- rescue: the real supervisor with its default policy (``rescue.cli.main.main``);
- optuna_tpe: Optuna TPE + MedianPruner, in-process, first trial = the broken params;
- asha: Ray Tune ASHA over the knob domains, first trial = the broken params;
- pbt: Ray Tune PBT, only when ``train`` restores from checkpoints;
- retry: the broken params again with a new seed each time;
- oracle: one in-process run with the known healthy params (not a contender: the yardstick),
  and oracle_ray, the same run as one Ray Tune trial (the yardstick for wall time under Ray).

    python bench/compare.py                      # every example with a "What rescue does"
    python bench/compare.py --quick              # lstm_divergence, one seed: a smoke check
    python bench/compare.py --scenarios lstm_divergence,nk_policy --seeds 2
    python bench/compare.py --render             # rewrite the results from compare.json

Writes bench/results/compare.json (raw, merged across invocations: a scenario run again
replaces its entry), compare.md and compare.png after every seed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402
from ray.tune.search.basic_variant import BasicVariantGenerator  # noqa: E402

from per_report import each_report_train  # noqa: E402
from rescue.config import Knob, RescueConfig, Target, load_config  # noqa: E402
from rescue.worker import reporting  # noqa: E402
from rescue.worker.entrypoint import load_entry  # noqa: E402
from rescue.worker.reporting import Metrics, install_sink  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "bench" / "results"

# The known fix of each scenario, from the comment in its cfg.yaml and its README.
HEALTHY: dict[str, dict[str, Any]] = {
    "lstm_divergence": {"lr": 0.1},
    "nk_policy": {"redraw_every": 1, "lam_pi": 1.0},
    "regime_dmm": {"input_norm": "running"},
    "ppo_value_norm": {"return_norm": "running"},
    "dqn_dead_head": {"head_init": "small_uniform"},
}
CONTENDERS = ("rescue", "optuna_tpe", "asha", "pbt", "retry", "oracle", "oracle_ray")
YARDSTICKS = ("oracle", "oracle_ray")  # one run with the fix: in-process, and as a Ray trial
UNDER_RAY = ("rescue", "asha", "pbt", "oracle_ray")  # pay Ray Tune's start-up per run
SEARCHERS = ("optuna_tpe", "asha", "pbt")  # the "best search contender" is one of these
WORST = 1e12  # stands in for a non-finite metric, which neither Optuna nor ASHA can rank


@dataclass
class Run:
    knobs: dict[str, Any]
    reports: int
    status: str  # completed | pruned (Optuna) | stopped (ASHA, rescue) | crashed
    met_success: bool
    seconds: float
    note: str = ""
    last: Metrics = field(default_factory=dict, repr=False)  # the last value of each metric


@dataclass
class Outcome:
    contender: str
    seed: int
    runs: list[Run] = field(default_factory=list)
    seconds: float = 0.0
    success: bool = False
    applicable: bool = True
    note: str = ""
    latencies: list[int] = field(default_factory=list)  # rescue: onset -> confirmation
    first_remedy_right: bool | None = None  # rescue: None when no remedy was applied

    @property
    def reports(self) -> int:
        return sum(r.reports for r in self.runs)


@dataclass
class Scenario:
    name: str
    folder: Path
    raw: dict[str, Any]
    config: RescueConfig

    @property
    def script(self) -> Path:
        return self.folder / "train.py"

    @property
    def has_seed(self) -> bool:
        return "seed" in self.config.params

    @property
    def budget_runs(self) -> int:
        return self.config.budget.restarts + 1

    @property
    def objective(self) -> tuple[str, Target]:
        """The first success metric: what Optuna and ASHA rank trials by."""
        return next(iter(self.config.success.items()))

    def params(self, seed: int) -> dict[str, Any]:
        params = dict(self.config.params)
        if self.has_seed:
            params["seed"] = seed
        return params

    def restores_from_checkpoints(self) -> bool:
        return "get_checkpoint" in self.script.read_text()


def load_scenario(name: str) -> Scenario:
    folder = EXAMPLES / name
    raw = yaml.safe_load((folder / "cfg.yaml").read_text())
    roles = tuple({str(k.get("role")) for k in (raw.get("knobs") or {}).values()})
    config = load_config(folder / "cfg.yaml", roles=roles)
    if not config.success:
        raise SystemExit(f"{name}: cfg.yaml has no success criterion to compare against")
    return Scenario(name, folder, raw, config)


def met(targets: dict[str, Target], last: Metrics) -> bool:
    return all(
        name in last and not isinstance(last[name], list) and t.met_by(last[name])
        for name, t in targets.items()
    )


def ranked(value: Any, target: Target) -> float:
    """A finite value to rank by; non-finite counts as the worst possible."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return WORST if target.below is not None else -WORST


# ---------------------------------------------------------------- in-process runs


class _Stop(Exception):
    """Raised from inside ``rescue.report`` to end a run the pruner gave up on."""


class _CaptureSink:
    """Receives ``rescue.report`` in-process (no Ray): counts reports, keeps the last value of
    every metric, and asks ``on_report`` whether to stop."""

    def __init__(self, on_report: Callable[[int, Metrics], bool] | None) -> None:
        self.on_report = on_report
        self.step = 0
        self.last: Metrics = {}

    def report(self, metrics: Metrics, checkpoint: Any) -> None:
        self.last.update(metrics)
        step, self.step = self.step, self.step + 1
        if self.on_report is not None and self.on_report(step, metrics):
            raise _Stop

    def get_checkpoint(self, weights_only: bool = True) -> dict[str, Any] | None:
        return None


def run_in_process(
    sc: Scenario, params: dict[str, Any], on_report: Callable[[int, Metrics], bool] | None = None
) -> Run:
    train = load_entry(sc.script, "train")
    sink = _CaptureSink(on_report)
    previous = install_sink(sink)
    sources = list(reporting._sources)  # a rescue.watch left open must not leak into the next run
    status, note = "completed", ""
    start = time.perf_counter()
    try:
        train(dict(params))
    except _Stop:
        status = "pruned"
    except Exception as exc:  # a crash is a result to record, not a reason to stop the bench
        status, note = "crashed", f"{type(exc).__name__}: {exc}"[:120]
    finally:
        install_sink(previous)
        for source in list(reporting._sources):
            if source not in sources:
                reporting.remove_report_source(source)
    seconds = time.perf_counter() - start
    success = status == "completed" and met(sc.config.success, sink.last)
    knobs = {k: params[k] for k in sc.config.knobs}
    return Run(knobs, sink.step, status, success, round(seconds, 2), note, dict(sink.last))


# ---------------------------------------------------------------- contenders


def oracle(sc: Scenario, seed: int) -> Outcome:
    params = {**sc.params(seed), **HEALTHY[sc.name]}
    run = run_in_process(sc, params)
    return Outcome("oracle", seed, [run], run.seconds, run.met_success)


def oracle_ray(sc: Scenario, seed: int, storage: Path) -> Outcome:
    """The same healthy run as one Ray Tune trial: what a run costs with Tune's start-up, the
    like-for-like wall-time yardstick for rescue and asha."""
    params = {**sc.params(seed), **HEALTHY[sc.name]}
    stopper = _SuccessStopper(dict(sc.config.success), run_length=0)
    trainable = tune.with_parameters(each_report_train, script=str(sc.script), entry="train")
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": sc.config.ray.cpus_per_run}),
        param_space=params,
        run_config=tune.RunConfig(
            name=f"oracle-{sc.name}-{seed}", storage_path=str(storage), stop=stopper, verbose=0
        ),
    )
    start = time.perf_counter()
    result = tuner.fit()[0]
    seconds = time.perf_counter() - start
    info = next(iter(stopper.trials.values()), {"reports": 0, "last": {}})
    status = "crashed" if result.error is not None else "completed"
    success = status == "completed" and met(sc.config.success, info["last"])
    knobs = {k: params[k] for k in sc.config.knobs}
    run = Run(knobs, info["reports"], status, success, round(seconds, 2))
    return Outcome("oracle_ray", seed, [run], seconds, success)


def retry(sc: Scenario, seed: int) -> Outcome:
    out = Outcome("retry", seed)
    if not sc.has_seed:
        out.note = "no seed param: reruns are the same config"
    start = time.perf_counter()
    for k in range(sc.budget_runs):
        params = sc.params(seed + 1000 * k)
        run = run_in_process(sc, params)
        run.note = f"seed {params.get('seed', '-')}"
        out.runs.append(run)
        if run.met_success:
            out.success = True
            break
    out.seconds = time.perf_counter() - start
    return out


def optuna_warmup(run_length: int) -> int:
    # Optuna's MedianPruner example: no pruning in the first 30 of 100 steps.
    return max(1, round(0.3 * run_length))


def optuna_tpe(sc: Scenario, seed: int, run_length: int) -> Outcome:
    metric, target = sc.objective
    direction = "minimize" if target.below is not None else "maximize"
    # n_startup_trials=1: the default (5) never prunes within a 5-run budget; one complete
    # trial (the broken params, enqueued first) gives the median to prune against.
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=optuna_warmup(run_length)
    )
    study = optuna.create_study(
        direction=direction, sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner
    )
    base = sc.params(seed)
    study.enqueue_trial(sc.config.knob_values(base))
    out = Outcome("optuna_tpe", seed)

    def objective(trial: optuna.Trial) -> float:
        knobs = {
            name: suggest(trial, name, knob, base[name]) for name, knob in sc.config.knobs.items()
        }

        def on_report(step: int, metrics: Metrics) -> bool:
            if metric not in metrics:
                return False
            trial.report(ranked(metrics[metric], target), step)
            return trial.should_prune()

        run = run_in_process(sc, {**base, **knobs}, on_report)
        out.runs.append(run)
        if run.status == "pruned":
            raise optuna.TrialPruned()
        if run.met_success:
            trial.study.stop()
        return ranked(run.last.get(metric), target)

    start = time.perf_counter()
    study.optimize(objective, n_trials=sc.budget_runs)
    out.seconds = time.perf_counter() - start
    out.success = any(r.met_success for r in out.runs)
    return out


def suggest(trial: optuna.Trial, name: str, knob: Knob, value: Any) -> Any:
    """The knob's whole domain; an integer when the param is one (as rescue reads it)."""
    if knob.is_categorical:
        return trial.suggest_categorical(name, list(knob.choices or ()))
    if isinstance(value, int) and not isinstance(value, bool):
        return trial.suggest_int(name, int(knob.low), int(knob.high), log=knob.log)
    return trial.suggest_float(name, knob.low, knob.high, log=knob.log)


def tune_domain(knob: Knob, value: Any) -> Any:
    if knob.is_categorical:
        return tune.choice(list(knob.choices or ()))
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = int(knob.low), int(knob.high) + 1  # Tune's upper bound is exclusive
        return tune.lograndint(low, high) if knob.log else tune.randint(low, high)
    return tune.loguniform(knob.low, knob.high) if knob.log else tune.uniform(knob.low, knob.high)


class _SuccessStopper(tune.Stopper):
    """Ends the experiment once a trial completes a full-length run meeting ``success``, and
    keeps, per trial in launch order, its report count and last metrics."""

    def __init__(self, targets: dict[str, Target], run_length: int) -> None:
        self.targets, self.run_length = targets, run_length
        self.trials: dict[str, dict[str, Any]] = {}
        self.succeeded = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        info = self.trials.setdefault(trial_id, {"reports": 0, "last": {}})
        iteration = int(result.get("training_iteration", 0))
        if iteration > info["reports"]:  # Tune repeats the last result when a trial ends
            info["reports"] = iteration
            info["last"].update({k: v for k, v in result.items() if isinstance(v, (int, float))})
        if self.run_length and iteration >= self.run_length and met(self.targets, info["last"]):
            self.succeeded = True
        return False

    def stop_all(self) -> bool:
        return self.succeeded


def asha_grace(run_length: int) -> int:
    # Ray's ASHA example: grace_period 10 for max_t 100.
    return max(1, run_length // 10)


def asha(sc: Scenario, seed: int, run_length: int, storage: Path) -> Outcome:
    metric, target = sc.objective
    base = sc.params(seed)
    space = {**base, **{n: tune_domain(k, base[n]) for n, k in sc.config.knobs.items()}}
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=run_length,
        grace_period=asha_grace(run_length),
        reduction_factor=3,
    )
    # One trial at a time: with a search_alg instance Tune ignores max_concurrent_trials.
    search = BasicVariantGenerator(
        points_to_evaluate=[sc.config.knob_values(base)], max_concurrent=1, random_state=seed
    )
    stopper = _SuccessStopper(dict(sc.config.success), run_length)
    trainable = tune.with_parameters(each_report_train, script=str(sc.script), entry="train")
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": sc.config.ray.cpus_per_run}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode="min" if target.below is not None else "max",
            scheduler=scheduler,
            search_alg=search,
            num_samples=sc.budget_runs,
        ),
        run_config=tune.RunConfig(
            name=f"asha-{sc.name}-{seed}",
            storage_path=str(storage),
            stop=stopper,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    start = time.perf_counter()
    grid = tuner.fit()
    out = Outcome("asha", seed, seconds=time.perf_counter() - start)
    by_id = {r.metrics.get("trial_id"): r for r in grid if r.metrics}
    for trial_id, info in stopper.trials.items():
        result = by_id.get(trial_id)
        config = result.config if result is not None else {}
        crashed = result is not None and result.error is not None
        full = info["reports"] >= run_length
        status = "crashed" if crashed else ("completed" if full else "stopped")
        success = full and not crashed and met(sc.config.success, info["last"])
        knobs = {k: config.get(k) for k in sc.config.knobs}
        out.runs.append(Run(knobs, info["reports"], status, success, 0.0))
    out.success = any(r.met_success for r in out.runs)
    return out


def pbt(sc: Scenario, seed: int) -> Outcome:
    if sc.restores_from_checkpoints():
        note = "not run: train() restores from checkpoints, but PBT is not wired up here yet"
    else:
        note = "not applicable: train() doesn't restore from checkpoints"
    return Outcome("pbt", seed, applicable=False, note=note)


def rescue_contender(sc: Scenario, seed: int, tmp: Path) -> Outcome:
    from rescue.cli.main import main

    raw = json.loads(json.dumps(sc.raw))
    if sc.has_seed:
        raw["params"]["seed"] = seed
    cfg_path = tmp / f"cfg-{sc.name}-{seed}.yaml"
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out_dir = tmp / f"rescue-{sc.name}-{seed}"
    args = [str(sc.script), "--config", str(cfg_path), "--out", str(out_dir), "-q"]
    errors = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(errors):
        code = main([*args, "--seed", str(seed)])
    out = Outcome("rescue", seed, seconds=time.perf_counter() - start)
    report_file = out_dir / "report.json"
    if not report_file.is_file():  # refused before running (bad input): a failure to record
        message = errors.getvalue().strip().splitlines()[-1:] or ["no message"]
        out.note = f"rescue exited with code {code} before any run: {message[0][:200]}"
        return out
    report = json.loads(report_file.read_text())
    out.success = report["outcome"] in ("healthy", "rescued")
    notes = []
    for r in report["runs"]:
        restart = [f for f in r["findings"] if f["action"] == "restart"]
        out.latencies += [f["step"] - f["onset"] for f in restart]
        note = "; ".join(f"{f['signature']} @{f['step']} (onset {f['onset']})" for f in restart)
        remedy = r.get("remedy") or {}
        if remedy:
            changes = ", ".join(
                f"{k} {a:.4g} -> {b:.4g}" if isinstance(a, float) else f"{k} {a} -> {b}"
                for k, (a, b) in remedy["changes"].items()
            )
            note += f" => {remedy['name']}: {changes}"
        knobs = {k: r["config"][k] for k in sc.config.knobs}
        run = Run(knobs, r["reports"], r["status"], r["met_success"], r["seconds"], note)
        out.runs.append(run)
    if len(report["runs"]) > 1:
        second = report["runs"][1]
        healthy = not any(f["action"] == "restart" for f in second["findings"])
        out.first_remedy_right = bool(second["met_success"] and healthy)
    notes.append(f"{report['outcome']}: {report['summary']}")
    out.note = " ".join(notes)
    return out


# ---------------------------------------------------------------- aggregation and output


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


@dataclass
class Summary:
    contender: str
    applicable: bool
    successes: int
    seeds: int
    reports: float | None  # median over successful seeds
    reports_ratio: float | None
    seconds: float | None
    seconds_ratio: float | None
    runs: float | None  # median over all seeds
    spent: float | None  # reports, median over all seeds
    latency: float | None = None
    first_right: str = ""
    seconds_ratio_ray: float | None = None  # wall time over the oracle's as a Ray trial
    note: str = ""


def summarize(
    contender: str,
    outcomes: list[Outcome],
    oracles: dict[int, Outcome],
    ray_oracles: dict[int, Outcome] | None = None,
) -> Summary:
    ok = [o for o in outcomes if o.success]
    ray_oracles = (ray_oracles or {}) if contender in UNDER_RAY else {}
    applicable = all(o.applicable for o in outcomes)
    ratio_r = [o.reports / oracles[o.seed].reports for o in ok if o.seed in oracles]
    ratio_s = [o.seconds / oracles[o.seed].seconds for o in ok if o.seed in oracles]
    s = Summary(
        contender,
        applicable,
        len(ok),
        len(outcomes),
        median([o.reports for o in ok]),
        median(ratio_r),
        median([o.seconds for o in ok]),
        median(ratio_s),
        median([len(o.runs) for o in outcomes]) if applicable else None,
        median([o.reports for o in outcomes]) if applicable else None,
    )
    s.seconds_ratio_ray = median(
        [o.seconds / ray_oracles[o.seed].seconds for o in ok if o.seed in ray_oracles]
    )
    if contender == "rescue":
        s.latency = median([lat for o in outcomes for lat in o.latencies])
        remedied = [o for o in outcomes if o.first_remedy_right is not None]
        s.first_right = f"{sum(o.first_remedy_right for o in remedied)}/{len(remedied)}"
    if not applicable:
        s.note = outcomes[0].note
    return s


def scenario_table(results: dict[str, list[Outcome]]) -> list[str]:
    oracles = {o.seed: o for o in results.get("oracle", [])}
    ray_oracles = {o.seed: o for o in results.get("oracle_ray", [])}
    lines = [
        "| contender | success | reports to success | x oracle | wall s to success | x oracle "
        "| x oracle_ray | runs launched | reports spent | detection latency "
        "| first remedy right |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for contender in CONTENDERS:
        if contender not in results:
            continue
        s = summarize(contender, results[contender], oracles, ray_oracles)
        if not s.applicable:
            lines.append(f"| {contender} | {s.note} | | | | | | | | | |")
            continue
        lines.append(
            f"| {contender} | {s.successes}/{s.seeds} | {fmt(s.reports, '.0f')} "
            f"| {fmt(s.reports_ratio, '.2f', 'x')} | {fmt(s.seconds)} "
            f"| {fmt(s.seconds_ratio, '.2f', 'x')} | {fmt(s.seconds_ratio_ray, '.2f', 'x')} "
            f"| {fmt(s.runs, '.0f')} | {fmt(s.spent, '.0f')} "
            f"| {fmt(s.latency, '.0f') if contender == 'rescue' else ''} | {s.first_right} |"
        )
    return lines


def details(
    sc: Scenario, results: dict[str, list[Outcome]], contenders: tuple[str, ...] = CONTENDERS
) -> list[str]:
    lines = [
        "| seed | contender | runs: knobs -> reports, status (* = met success) | wall s |",
        "|---|---|---|---|",
    ]
    seeds = sorted({o.seed for outs in results.values() for o in outs})
    for seed in seeds:
        for contender in contenders:
            for o in results.get(contender, []):
                if o.seed != seed or not o.applicable:
                    continue
                runs = "; ".join(
                    f"{_knobs(r.knobs)} -> {r.reports} {r.status}{'*' if r.met_success else ''}"
                    + (f" [{r.note}]" if r.note else "")
                    for r in o.runs
                )
                extra = f" ({o.note})" if o.note else ""
                lines.append(f"| {seed} | {contender} | {runs}{extra} | {o.seconds:.1f} |")
    return lines


def _knobs(knobs: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in knobs.items()
    )


def best_searcher(results: dict[str, list[Outcome]]) -> Summary | None:
    oracles = {o.seed: o for o in results.get("oracle", [])}
    ray_oracles = {o.seed: o for o in results.get("oracle_ray", [])}
    candidates = [summarize(c, results[c], oracles, ray_oracles) for c in SEARCHERS if c in results]
    candidates = [s for s in candidates if s.applicable]
    if not candidates:
        return None
    # Most seeds rescued first, then the fewest reports relative to the oracle, then spent.
    return min(
        candidates,
        key=lambda s: (-s.successes, s.reports_ratio or math.inf, s.spent or math.inf),
    )


def _cell(s: Summary | None) -> str:
    if s is None:
        return "n/a"
    if not s.successes:
        return f"0/{s.seeds}: no run met success ({fmt(s.spent, '.0f')} reports spent)"
    ray = f" ({s.seconds_ratio_ray:.2f}x oracle_ray)" if s.seconds_ratio_ray is not None else ""
    return (
        f"{s.successes}/{s.seeds}, {fmt(s.reports_ratio, '.2f', 'x')} reports, "
        f"{fmt(s.seconds_ratio, '.2f', 'x')} wall{ray}"
    )


def choices(scenarios: list[Scenario], run_lengths: dict[str, int]) -> list[str]:
    lines = ["## Contenders and the choices made", ""]
    lengths = ", ".join(f"{n}: {run_lengths[n]} reports" for n in run_lengths)
    lines += [
        f"Budget: at most `budget.restarts + 1` runs per contender, each at most one full run "
        f"({lengths}). All contenders run one at a time, one CPU per run (`ray.cpus_per_run`), "
        "on a Ray started with `num_cpus=2`. Seeds override `params.seed`.",
        "",
        "- **rescue**: `rescue.cli.main.main([train.py, --config, cfg, --out, tmp, -q, "
        "--seed, SEED])` "
        "with the default policy; numbers read from `report.json` (runs, reports, outcome, "
        "findings with `onset`/`step`, remedies). Each run is a Ray Tune trial.",
        "- **optuna_tpe**: `TPESampler(seed=SEED)` with its defaults (its 10 random start-up "
        "trials exceed the budget, so every trial after the enqueued one is a seeded random "
        "draw), `MedianPruner(n_startup_trials=1, n_warmup_steps=30% of the run)`: the default "
        "`n_startup_trials=5` would never prune within 5 runs; 30% warm-up follows the "
        "`MedianPruner` docs' example (30 of 100 steps). First trial = the broken params "
        "(`enqueue_trial`); `trial.report` of the first success metric at every report, pruned "
        "on `should_prune()`; `study.stop()` at the first trial meeting `success`; "
        "`n_trials = restarts + 1`. Runs in-process: `rescue.report` goes to a capturing sink "
        "(`rescue.worker.reporting.install_sink`), no Ray.",
        "- **asha**: `Tuner` + `ASHAScheduler(time_attr=training_iteration, max_t=run length, "
        "grace_period=run length // 10, reduction_factor=3)` (the ratios of Ray's ASHA "
        "example, max_t=100, grace_period=10, reduction_factor=3), metric = the first success "
        "metric; `BasicVariantGenerator(points_to_evaluate=[broken knobs], random_state=SEED)` "
        "so the first trial is the broken params, then random draws from the knob domains; "
        "`num_samples = restarts + 1`, one trial at a time (`max_concurrent=1`); a `Stopper` "
        "ends the "
        "experiment when a trial completes a full run meeting `success`. Under Ray Tune, "
        "one Tune result per `rescue.report` (`bench/per_report.py`), as a script written for "
        "Ray Tune reports, so that ASHA's `training_iteration` counts reports.",
        "- **pbt**: `PopulationBasedTraining` needs a `train` that resumes from a checkpoint "
        "(`rescue.get_checkpoint()`); where it doesn't, the table says so and nothing runs.",
        "- **retry**: the broken params again with `seed + 1000 k`, k = 0, 1, ...; in-process.",
        "- **oracle_ray**: the oracle's run as one Ray Tune trial (bare `Tuner`, "
        "`bench/per_report.py`): the wall-time yardstick for the Ray "
        "contenders.",
        "- **oracle**: one in-process run with the known fix: "
        + "; ".join(f"{sc.name} {HEALTHY.get(sc.name, 'unknown')}" for sc in scenarios)
        + ".",
        "",
        "Measures (median over seeds): **success** = seeds where a run completed meeting "
        "`success` (for rescue: outcome healthy or rescued); **reports to success** = all "
        "reports of all runs launched until that run completed, and its ratio to the oracle's "
        "reports for the same seed (median over the successful seeds only; n/a when none "
        "succeeded); **wall s** likewise; **runs launched** and **reports spent** over all "
        "seeds, failed ones included. **Detection latency** = `step - onset` of rescue's "
        "restart-worthy findings, in reports; **first remedy right** = the run after the first "
        "remedy met success (seeds with a remedy).",
        "",
        "Wall times are not like for like: rescue and asha pay Ray Tune's per-trial start-up "
        "(compare the oracle_ray row with the oracle row), optuna_tpe, retry and the oracle "
        "run in-process. The `x oracle` columns divide by the in-process oracle, `x oracle_ray` "
        "(shown for the contenders under Ray) by the same run as one Ray Tune trial. Reports "
        "are the fairer measure of compute, though not exact: a report's cost depends on the "
        "config (nk_policy's fix, `redraw_every: 1`, redraws every iteration).",
    ]
    return lines


def source_state() -> str:
    """Which rescue was measured: the commit, and whether its source had local changes."""
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "src", "policies"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "rescue source: unknown commit"
    dirty = ", with uncommitted changes in src/ or policies/" if changed else ""
    return f"rescue at commit {head}{dirty}"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {cpu}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}, "
        f"optuna {optuna.__version__}"
    )


def load_raw(path: Path) -> dict[str, dict[str, Any]]:
    """Earlier invocations' results, so scenarios can be run one invocation at a time."""
    if not path.is_file():
        return {}
    stored = json.loads(path.read_text())
    for entry in stored.values():
        entry["results"] = {
            c: [Outcome(**{**o, "runs": [Run(**r) for r in o["runs"]]}) for o in outs]
            for c, outs in entry["results"].items()
        }
    return stored


def save_raw(path: Path, stored: dict[str, dict[str, Any]]) -> None:
    plain = {
        name: {
            **entry,
            "results": {c: [asdict(o) for o in outs] for c, outs in entry["results"].items()},
        }
        for name, entry in stored.items()
    }
    path.write_text(json.dumps(plain, indent=1, default=str) + "\n")


def write_outputs(stored: dict[str, dict[str, Any]], out: Path) -> None:
    done = [load_scenario(name) for name in sorted(stored)]
    lines = [
        "# rescue vs. search baselines on the shipped broken examples",
        "",
        f"{machine()}. Each scenario below says its date, command and wall time "
        f"({sum(e['minutes'] for e in stored.values()):.0f} min in all); raw numbers in "
        "[compare.json](compare.json).",
        "",
        "## Headline",
        "",
        "Per scenario: seeds rescued, then reports and wall time to the first run meeting "
        "`success`, as a ratio to one in-process run with the known fix (median over successful "
        "seeds); for the contenders that run under Ray Tune, also the wall-time ratio to that "
        "run as one Ray Tune trial (oracle_ray).",
        "",
        "| scenario | seeds | rescue | best search contender "
        "| oracle: reports, wall s in-process / as a Ray trial |",
        "|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for sc in done:
        entry = stored[sc.name]
        results = entry["results"]
        notes += entry["notes"]
        oracles = {o.seed: o for o in results.get("oracle", [])}
        ray_oracles = {o.seed: o for o in results.get("oracle_ray", [])}
        rescue_s = (
            summarize("rescue", results["rescue"], oracles, ray_oracles)
            if "rescue" in results
            else None
        )
        best = best_searcher(results)
        orc = results.get("oracle", [])
        ray_s = median([o.seconds for o in results.get("oracle_ray", [])])
        oracle_cell = (
            f"{median([o.reports for o in orc]):.0f}, {median([o.seconds for o in orc]):.1f} "
            f"/ {fmt(ray_s)} ({sum(o.success for o in orc)}/{len(orc)} met success)"
            if orc
            else "n/a"
        )
        n = len(results.get("rescue", []))
        lines.append(
            f"| {sc.name} | {n} of {entry['seeds_wanted']} | {_cell(rescue_s)} "
            f"| {best.contender + ': ' + _cell(best) if best else 'n/a'} | {oracle_cell} |"
        )
    lines += ["", *notes] if notes else []
    run_lengths = {sc.name: stored[sc.name]["run_length"] for sc in done}
    lines += ["", *choices(done, run_lengths), ""]
    for sc in done:
        entry = stored[sc.name]
        results = entry["results"]
        seed_note = "" if sc.has_seed else " (cfg.yaml has no `seed` param: one seed only)"
        lines += [
            f"## {sc.name}",
            "",
            f"{entry['date']}, {entry.get('source', 'rescue source: unknown')}, "
            f"`{entry['command'].strip()}`, {entry['minutes']:.1f} min for this "
            f"scenario. Broken params: {_knobs(sc.config.knob_values())}; fix: "
            f"{HEALTHY.get(sc.name, 'unknown')}; success: "
            + ", ".join(f"{m} {t.describe()}" for m, t in sc.config.success.items())
            + f"; budget {sc.budget_runs} runs x {entry['run_length']} reports{seed_note}.",
            "",
            *scenario_table(results),
            "",
            "Every run, per seed:",
            "",
            *details(sc, results),
            "",
        ]
    lines += ["![compare](compare.png)", ""]
    (out / "compare.md").write_text("\n".join(lines))
    plot(done, {name: entry["results"] for name, entry in stored.items()}, out)


def plot(
    scenarios: list[Scenario], all_results: dict[str, dict[str, list[Outcome]]], out: Path
) -> None:
    from matplotlib.patches import Patch

    contenders = [c for c in CONTENDERS if c not in (*YARDSTICKS, "pbt")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    width = 0.8 / len(contenders)
    for ax, what in zip(axes, ("reports", "wall time")):
        for i, contender in enumerate(contenders):
            for j, sc in enumerate(scenarios):
                results = all_results[sc.name]
                oracles = {o.seed: o for o in results.get("oracle", [])}
                if contender not in results or not oracles:
                    continue
                outs = results[contender]
                s = summarize(contender, outs, oracles)
                value = s.reports_ratio if what == "reports" else s.seconds_ratio
                x = j + (i - (len(contenders) - 1) / 2) * width
                style: dict[str, Any] = {"color": f"C{i}"}
                if value is None:  # no seed succeeded: a hatched bar at what it spent
                    spent = [
                        o.reports / oracles[o.seed].reports
                        if what == "reports"
                        else o.seconds / oracles[o.seed].seconds
                        for o in outs
                        if o.seed in oracles
                    ]
                    value = statistics.median(spent)
                    style = {"color": "white", "edgecolor": f"C{i}", "hatch": "//"}
                ax.bar([x], [value], width, **style)
                label = f"{s.successes}/{s.seeds}"
                ax.text(x, value, label, ha="center", va="bottom", fontsize=7)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(range(len(scenarios)), [sc.name for sc in scenarios], rotation=20)
        ax.set_ylabel(f"{what} to success / oracle (median)")
        ax.set_title(f"{what}: ratio to one run with the fix (log)")
    handles = [Patch(color=f"C{i}", label=c) for i, c in enumerate(contenders)]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9)
    fig.text(
        0.01,
        0.01,
        "k/n above a bar: seeds that met success; hatched: none did, bar = budget spent / oracle",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.94))
    fig.savefig(out / "compare.png", dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- main


def run_contender(contender: str, sc: Scenario, seed: int, run_length: int, tmp: Path) -> Outcome:
    if contender == "rescue":
        return rescue_contender(sc, seed, tmp)
    if contender == "optuna_tpe":
        return optuna_tpe(sc, seed, run_length)
    if contender == "asha":
        return asha(sc, seed, run_length, tmp / "ray")
    if contender == "pbt":
        return pbt(sc, seed)
    return retry(sc, seed)


def default_scenarios() -> list[str]:
    """Examples that are runnable, documented (their README says what rescue does) and have a
    known fix here (the yardstick every ratio divides by)."""
    names = []
    for folder in sorted(EXAMPLES.iterdir()):
        readme = folder / "README.md"
        if (
            folder.name in HEALTHY
            and (folder / "train.py").is_file()
            and (folder / "cfg.yaml").is_file()
            and readme.is_file()
            and "What rescue does" in readme.read_text()
        ):
            names.append(folder.name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="lstm_divergence, one seed")
    parser.add_argument("--scenarios", help="comma-separated example names")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per scenario")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite compare.md/.png from compare.json"
    )
    args = parser.parse_args()
    if args.render:
        write_outputs(load_raw(RESULTS / "compare.json"), RESULTS)
        return
    names = (
        ["lstm_divergence"]
        if args.quick
        else (args.scenarios.split(",") if args.scenarios else default_scenarios())
    )
    n_seeds = 1 if args.quick else args.seeds
    command = "python bench/compare.py " + " ".join(sys.argv[1:])

    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"  # runs keep the working directory, as rescue's
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    tmp = Path(tempfile.mkdtemp(prefix="rescue-compare-"))
    # A smoke check leaves the published results alone.
    out = tmp if args.quick else RESULTS
    raw_path = out / "compare.json"
    stored = load_raw(raw_path)
    scenarios = [load_scenario(n) for n in names]
    try:
        for sc in scenarios:
            started = time.perf_counter()
            seeds = list(range(n_seeds)) if sc.has_seed else [0]
            results: dict[str, list[Outcome]] = {}
            entry: dict[str, Any] = {
                "date": date.today().isoformat(),
                "command": command,
                "source": source_state(),
                "seeds_wanted": len(seeds),
                "notes": [],
                "results": results,
            }
            # Untimed: the first in-process run would also pay the import and torch's warm-up.
            run_in_process(sc, sc.params(seeds[0]), lambda step, metrics: True)
            for seed in seeds:
                if sc.name in HEALTHY:
                    orc = oracle(sc, seed)
                    results.setdefault("oracle", []).append(orc)
                    run_length = orc.reports
                else:
                    entry["notes"] = [f"{sc.name}: no known fix, so no oracle and no ratios."]
                    run_length = run_in_process(sc, sc.params(seed)).reports
                entry["run_length"] = run_length
                if sc.name in HEALTHY:
                    results.setdefault("oracle_ray", []).append(oracle_ray(sc, seed, tmp / "ray"))
                for contender in CONTENDERS[: CONTENDERS.index("oracle")]:
                    outcome = run_contender(contender, sc, seed, run_length, tmp)
                    results.setdefault(contender, []).append(outcome)
                    print(
                        f"{sc.name} seed {seed} {contender}: "
                        f"{'success' if outcome.success else 'no success'}, "
                        f"{outcome.reports} reports, {len(outcome.runs)} runs, "
                        f"{outcome.seconds:.1f} s",
                        flush=True,
                    )
                entry["minutes"] = (time.perf_counter() - started) / 60
                stored[sc.name] = entry  # written after every seed: an interrupted run keeps it
                save_raw(raw_path, stored)
                write_outputs(stored, out)
    finally:
        ray.shutdown()
    print((out / "compare.md").read_text())
    print(f"written: {out / 'compare.md'}, {out / 'compare.png'}, {raw_path}")


if __name__ == "__main__":
    main()
