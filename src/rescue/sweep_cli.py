"""``rescue sweep``: an Optuna search whose trials are supervised like a single rescue.

    rescue sweep train.py --config cfg.yaml --trials N --parallel K [--out DIR] [--seed S]
                 [--metric NAME --mode min|max] [--rescue-sick] [--storage URL]
                 [--address ADDR] [--entry NAME] [-q]

Exit codes: 0 a healthy trial met success (any healthy trial without ``success:``), 3 none
did, 2 bad input.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rescue.errors import RescueError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rescue sweep",
        description="Search the knobs' (and search:) domains with Optuna; every trial is watched "
        "by the rescue detectors, a sick one is stopped at its diagnosis and the sampler learns "
        "the failure region from it.",
    )
    parser.add_argument("script", type=Path, help="the training script, defining train(config)")
    parser.add_argument("--config", "-c", type=Path, required=True, help="the cfg.yaml")
    parser.add_argument("--trials", "-n", type=int, default=20, help="trials in all (default 20)")
    parser.add_argument("--parallel", "-k", type=int, default=1, help="trials at a time")
    parser.add_argument("--metric", help="the objective (default: the first success: metric)")
    parser.add_argument("--mode", choices=["min", "max"], help="the objective's direction")
    parser.add_argument(
        "--rescue-sick",
        action="store_true",
        help="restart a diagnosed trial once with the policy's remedy (counts as a trial)",
    )
    parser.add_argument("--entry", default="train", help="the function to call (default: train)")
    parser.add_argument("--out", type=Path, help="output folder (default: rescue-runs/NAME-TIME)")
    parser.add_argument("--storage", help="Optuna storage URL (default: SQLite in --out)")
    parser.add_argument("--address", help="an existing Ray cluster (default: start local Ray)")
    parser.add_argument("--seed", type=int, default=0, help="the Optuna sampler's seed")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing")
    return parser


def sweep_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.trials < 1 or args.parallel < 1:
        raise RescueError("--trials and --parallel: expected positive integers")
    from rescue.cli import _load_config, _quiet_ray
    from rescue.entrypoint import check_entry
    from rescue.sweep import SweepLoop, SweepReport, choose_objective

    config, policy = _load_config(args.config)
    if not config.knobs and not config.search:
        raise RescueError(f"{args.config}: expected knobs or search params to sweep over")
    objective = choose_objective(config, args.metric, args.mode)
    script = args.script.resolve()
    check_entry(script, args.entry)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = (args.out or Path("rescue-runs") / f"{script.stem}-sweep-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    _quiet_ray()

    from rescue.ray_runner import RayRunner
    from rescue.study import default_storage
    from rescue.sweep_console import SweepConsole
    from rescue.sweep_runner import run_sweep
    from rescue.sweep_study import SweepStudy

    storage = args.storage or default_storage(out)
    name = f"sweep-{out.name}"
    study = SweepStudy(storage, name, objective.mode, args.trials, seed=args.seed)
    report = SweepReport(
        script=str(script),
        config_file=str(args.config.resolve()),
        out=str(out),
        storage=storage,
        study=name,
    )
    display = SweepConsole([*config.knobs, *config.search], quiet=args.quiet)
    loop = SweepLoop(
        config, policy, study, objective, args.trials, out, report, display, args.rescue_sick
    )
    runner = RayRunner.for_output(out, args.address, config.ray)
    runner.start()
    try:
        run_sweep(runner, loop, "sweep", str(script), args.entry, args.trials, args.parallel)
    finally:
        runner.shutdown()
    report = loop.result()
    if not args.quiet:
        print(f"{report.outcome}: {report.summary} ({out})")
    return report.exit_code
