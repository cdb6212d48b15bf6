"""``rescue sweep``: an Optuna search whose trials are supervised like a single rescue.

    rescue sweep train.py --config cfg.yaml --trials N --parallel K [--out DIR] [--seed S]
                 [--command CMD] [--metric NAME --mode min|max] [--rescue-sick]
                 [--storage URL] [--study NAME]
                 [--address ADDR] [--entry NAME] [-q]

Exit codes: 0 a healthy trial met success (any healthy trial without ``success:``), 3 none
did, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rescue.errors import RescueError

if TYPE_CHECKING:
    from rescue.cli.console import SweepConsole
    from rescue.config import RescueConfig
    from rescue.engine.resume import SweepResume
    from rescue.engine.sweep import SweepLoop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rescue sweep",
        description="Search the knobs' (and search:) domains with Optuna; every trial is watched "
        "by the rescue detectors, a sick one is stopped at its diagnosis and the sampler learns "
        "the failure region from it.",
    )
    parser.add_argument(
        "script",
        type=Path,
        nargs="?",
        help="the training script: train(config), or run as a process with the params as flags",
    )
    parser.add_argument(
        "--command", help="run this command line instead, with the params as flags (quoted)"
    )
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
    parser.add_argument("--entry", help="the function to call (default: train)")
    parser.add_argument("--out", type=Path, help="output folder (default: rescue-runs/NAME-TIME)")
    parser.add_argument(
        "--storage", help="Optuna storage URL or journal:PATH (default: SQLite in --out)"
    )
    parser.add_argument(
        "--study",
        help="the Optuna study's name; sweeps given the same --storage and --study share it, "
        "each sampler learning from all their trials (default: a new study per sweep)",
    )
    parser.add_argument("--address", help="an existing Ray cluster (default: start local Ray)")
    parser.add_argument("--seed", type=int, default=0, help="the Optuna sampler's seed")
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print nothing but the verdict of a sweep that found no healthy trial",
    )
    return parser


def sweep_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.trials < 1 or args.parallel < 1:
        raise RescueError("--trials and --parallel: expected positive integers")
    from rescue.cli.startup import (
        cluster_address,
        opened,
        output_folder,
        read_cfg,
        start_fresh,
        what_to_run,
    )
    from rescue.engine.sweep import SweepLoop, SweepReport, choose_objective

    config, policy = read_cfg(args.config)
    if config.mirror.mlflow or config.mirror.tensorboard:
        raise RescueError(
            f"{args.config}: mirror: is read by rescues only; rescue sweep does not mirror "
            "its trials yet (remove it from the sweep's cfg)"
        )
    if not config.knobs and not config.search:
        raise RescueError(f"{args.config}: expected knobs or search params to sweep over")
    objective = choose_objective(config, args.metric, args.mode)
    script, entry, command = what_to_run(args, config)
    cluster_address(args, config)  # checked before the folder and the study are made

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = output_folder(args.out or Path("rescue-runs") / f"{script.stem}-sweep-{stamp}", "--out")
    start_fresh(out)

    from rescue.engine.resume import SweepResume
    from rescue.search.study import SweepStudy, default_storage

    storage = args.storage or default_storage(out)
    name = args.study or f"sweep-{out.name}"
    resume = SweepResume(
        trials=args.trials,
        parallel=args.parallel,
        entry=entry,
        command=command.to_dict() if command is not None else None,
        seed=args.seed,
        address=args.address,
        rescue_sick=args.rescue_sick,
    )
    report = SweepReport(
        script=str(script),
        config_file=str(args.config.resolve()),
        out=str(out),
        storage=storage,
        study=name,
        resume=resume.to_dict(),
    )
    study = opened(
        storage,
        lambda: SweepStudy(
            storage,
            name,
            objective.mode,
            args.trials,
            seed=args.seed,
            load=args.study is not None,
            owner=resume.sweep_id,
        ),
    )
    display = _console(config, args.quiet)
    loop = SweepLoop(
        config,
        policy,
        study,
        objective,
        args.trials,
        out,
        report,
        display,
        args.rescue_sick,
        entry,
        command,
    )
    from rescue.engine.trust import Launch, remember

    remember(
        Launch.of(out, script, entry, resume.command, report.config_file, storage, args.address)
    )
    return _run(loop, resume, script, args.address, args.quiet)


def resume_sweep(args: argparse.Namespace) -> int:
    """``rescue resume OUTDIR`` on a sweep's folder (see :mod:`rescue.engine.resume`)."""
    from rescue.cli.startup import check_resumable, check_study, read_cfg
    from rescue.engine.resume import interrupted_note, load_sweep
    from rescue.engine.sweep import SweepLoop, choose_objective
    from rescue.engine.trust import Launch
    from rescue.search.study import SweepStudy
    from rescue.worker.command_line import CommandSpec
    from rescue.worker.entrypoint import check_entry

    address, quiet = args.address, args.quiet
    saved = load_sweep(args.out)
    report, resume = saved.report, saved.resume
    if not saved.ended:
        from rescue.engine.folder_lock import lock_folder

        lock_folder(saved.out)
    if saved.ended:
        if not quiet:
            print(f"{report.outcome}: the sweep already ended: {report.summary} ({saved.out})")
        return report.exit_code
    recorded = Launch.of(
        saved.out,
        report.script,
        resume.entry,
        resume.command,
        report.config_file,
        report.storage,
        resume.address,
    )
    check_resumable(args, recorded, saved.out)
    config, policy = read_cfg(Path(report.config_file))
    script = Path(report.script)
    if resume.command is None:
        check_entry(script, resume.entry)
    objective = report.objective or choose_objective(config)
    check_study(report.storage, report.study)
    study = SweepStudy(
        report.storage,
        report.study,
        objective.mode,
        resume.trials,
        seed=resume.seed,
        load=True,
        owner=resume.sweep_id,
    )
    closed = study.close_interrupted("the supervisor stopped during this trial; rescue resume")
    resume.resumes += 1
    report.resume = resume.to_dict()
    display = _console(config, quiet)
    loop = SweepLoop(
        config,
        policy,
        study,
        objective,
        resume.trials,
        saved.out,
        report,
        display,
        resume.rescue_sick,
        resume.entry,
        CommandSpec.from_dict(resume.command),
    )
    again = loop.take_over(lambda trial: interrupted_note(saved.out, trial))
    ended = sum(t.outcome != "running" for t in report.runs)
    if not quiet:
        rerun = f"; trial(s) {[t.run for t in again]} in flight, run again" if again else ""
        failed = f"; Optuna trial(s) {closed} marked failed" if closed else ""
        print(f"resuming {saved.out}: {ended} of {resume.trials} trials ended{rerun}{failed}")
    return _run(loop, resume, script, address or resume.address, quiet)


def _console(config: RescueConfig, quiet: bool) -> SweepConsole:
    from rescue.cli.console import SweepConsole

    return SweepConsole([*config.knobs, *config.search], quiet=quiet)


def _run(
    loop: SweepLoop, resume: SweepResume, script: Path, address: str | None, quiet: bool
) -> int:
    """The sweep's trials under Ray Tune, then its verdict."""
    from rescue.cli.startup import quiet_ray
    from rescue.engine.interrupt import Interrupt
    from rescue.engine.ray_runner import RayRunner
    from rescue.worker.command_line import CommandSpec

    quiet_ray()
    config, out = loop.config, loop.out
    interrupt = Interrupt()
    runner = RayRunner.for_output(out, address, config.ray, interrupt)
    # Each resume is a new Ray Tune experiment beside the first.
    name = "sweep" if not resume.resumes else f"sweep-resume-{resume.resumes}"
    command = CommandSpec.from_dict(resume.command)
    with interrupt:  # a signal while Ray starts interrupts the sweep
        try:
            runner.start()
            interrupt.reinstall()
            lane = runner.lane(
                str(script),
                resume.entry,
                command,
                loop.judge_spec,
                name=name,
                slots=resume.parallel,
            )
            loop.run(lane, resume.parallel)
        finally:
            runner.shutdown()
    if interrupt.requested:
        report = loop.interrupted(interrupt.name)
        print(f"interrupted: {report.summary}; rescue resume {out}", file=sys.stderr)
        return interrupt.exit_code
    report = loop.result()
    if not quiet or report.exit_code:
        # As `rescue`: the last line says why, also in quiet mode when no trial was healthy.
        print(
            f"{report.outcome}: {report.summary} ({out})", file=sys.stderr if quiet else sys.stdout
        )
    return report.exit_code
