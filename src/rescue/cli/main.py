"""The ``rescue`` command.

    rescue train.py --config cfg.yaml [--entry NAME] [--out DIR] [--storage URL]
                   [--address ADDR] [--seed N] [--quiet]
    rescue --command "python plain.py" --config cfg.yaml ...
    rescue resume OUTDIR [SCRIPT --config cfg.yaml | --command CMD ...] [--trust-outdir]
                  [--address ADDR] [--quiet]
    rescue signatures [--policy NAME_OR_PATH]
    rescue report OUTDIR
    rescue sweep train.py --config cfg.yaml --trials N --parallel K ...   (see sweep_cli)

Exit codes: 0 healthy or rescued, 3 not rescued, 2 bad input, 130 or 143 interrupted by
SIGINT (Ctrl-C) or SIGTERM (the folder is left for `rescue resume`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from rescue.cli.startup import (
    check_resumable,
    check_study,
    cluster_address,
    opened,
    output_folder,
    quiet_ray,
    read_cfg,
    start_fresh,
    what_to_run,
)
from rescue.errors import RescueError

if TYPE_CHECKING:
    from rescue.engine.resume import Saved
    from rescue.engine.supervisor import Job
    from rescue.engine.trust import Launch
    from rescue.policy import Policy
    from rescue.search.study import RescueStudy

USAGE_EXIT = 2
T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from rescue.engine.interrupt import Stopped, stop_at_once

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop_at_once) if main_thread else None
    try:
        if argv[:1] == ["signatures"]:
            return _signatures(argv[1:])
        if argv[:1] == ["report"]:
            return _report(argv[1:])
        if argv[:1] == ["resume"]:
            return _resume(argv[1:])
        if argv[:1] == ["sweep"]:
            from rescue.cli.sweep import sweep_main

            return sweep_main(argv[1:])
        return _rescue(argv)
    except RescueError as exc:
        print(f"rescue: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # before a rescue handles signals, or a second Ctrl-C
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        print(
            f"rescue: {signal.Signals(signum).name}: stopped at once; an output folder with a "
            "report.json resumes with `rescue resume OUTDIR`",
            file=sys.stderr,
        )
        if isinstance(exc, Stopped) and exc.hard and main_thread:
            from rescue.engine.folder_lock import release_folders

            release_folders()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + signum)
        return 128 + signum
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        from rescue.engine.folder_lock import release_folders

        release_folders()


def _rescue_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rescue",
        description="Run a training script under Ray Tune, diagnose failures from its metrics "
        "and restart it with Optuna-chosen fixes. Also: `rescue sweep` (a search whose sick "
        "trials are stopped), `rescue resume`, `rescue signatures`, `rescue report`.",
    )
    parser.add_argument(
        "script",
        type=Path,
        nargs="?",
        help="the training script: one defining train(config), or a plain script run as a "
        "process with the params as flags",
    )
    parser.add_argument(
        "--command", help='run this command line as a plain script, e.g. "python train.py"'
    )
    parser.add_argument("--config", "-c", type=Path, required=True, help="the cfg.yaml")
    parser.add_argument("--entry", help="the function to call (default: train)")
    parser.add_argument("--out", type=Path, help="output folder (default: rescue-runs/NAME-TIME)")
    parser.add_argument(
        "--storage", help="Optuna storage: an RDB URL or journal:PATH (default: SQLite in --out)"
    )
    parser.add_argument("--address", help="an existing Ray cluster (default: start local Ray)")
    parser.add_argument("--seed", type=int, default=0, help="the Optuna sampler's seed")
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print nothing but the verdict of a failed rescue",
    )
    _page_option(parser)
    return parser


def _page_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-page",
        action="store_true",
        help="skip drawing report.html and plots/ at the end (a few seconds of matplotlib); "
        "`rescue report OUTDIR` draws them later",
    )


def _rescue(argv: list[str]) -> int:
    args = _rescue_parser().parse_args(argv)
    config, policy = read_cfg(args.config)
    script, entry, command = what_to_run(args, config)
    address = cluster_address(args, config)

    out = args.out or Path("rescue-runs") / f"{script.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = output_folder(out, "--out")
    start_fresh(out)

    from rescue.engine.supervisor import Job
    from rescue.engine.trust import remember
    from rescue.search.study import RescueStudy, default_storage

    storage = args.storage or default_storage(out)
    study = opened(
        storage,
        lambda: RescueStudy(storage, f"rescue-{out.name}", seed=args.seed, search=policy.search),
    )
    job = Job(script, entry, config, args.config.resolve(), command)
    remember(_launch(out, job, storage, address))
    return _supervise(job, policy, study, out, address, args.quiet, page=not args.no_page)


def _launch(out: Path, job: Job, storage: str, address: str | None) -> Launch:
    from rescue.engine.trust import Launch

    command = job.command.to_dict() if job.command is not None else None
    return Launch.of(out, job.script, job.entry, command, job.config_file, storage, address)


def _resume(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rescue resume",
        description="Go on with a rescue or a sweep whose supervisor was stopped (killed, node "
        "lost): finished runs are kept, a run in flight is restarted with the same config.",
    )
    parser.add_argument("out", type=Path, help="the rescue's or sweep's output folder (--out)")
    parser.add_argument(
        "script",
        type=Path,
        nargs="?",
        help="the training script it was started with (needed, with --config, when this "
        "account did not start it; see --trust-outdir)",
    )
    parser.add_argument("--config", "-c", type=Path, help="the cfg.yaml it was started with")
    parser.add_argument("--command", help="the plain script's command line it was started with")
    parser.add_argument("--entry", help="the function it was started with")
    parser.add_argument("--storage", help="the Optuna storage it was started with")
    parser.add_argument(
        "--trust-outdir",
        action="store_true",
        help="run what OUTDIR's report.json names (script, cfg, command, storage, Ray address, "
        "checkpoints) without checking it: only for a folder you trust",
    )
    parser.add_argument("--address", help="a Ray cluster (default: the one recorded, or local)")
    _page_option(parser)
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print nothing but the verdict of a failed rescue",
    )
    args = parser.parse_args(argv)
    if (args.script or args.command) and args.config is None:
        parser.error("naming the script or command again needs --config too")
    from rescue.engine.resume import is_sweep_folder

    if is_sweep_folder(args.out):
        from rescue.cli.sweep import resume_sweep

        return resume_sweep(args)

    from rescue.engine.resume import load_saved, set_aside

    saved = load_saved(args.out)
    report = saved.report
    if not saved.ended:
        from rescue.engine.folder_lock import lock_folder

        lock_folder(saved.out)
    if saved.ended:
        if not args.quiet:
            print(f"{report.outcome}: the rescue already ended: {report.summary} ({saved.out})")
        return report.exit_code
    from rescue.engine.trust import Launch, check_checkpoints

    command = saved.command.to_dict() if saved.command is not None else None
    recorded = Launch.of(
        saved.out,
        report.script,
        saved.entry,
        command,
        report.config_file,
        report.storage,
        saved.address,
    )
    check_resumable(args, recorded, saved.out)
    config, policy = read_cfg(Path(report.config_file))
    progress = saved.progress
    continued = progress.continued.checkpoints if progress.continued else []
    check_checkpoints(
        saved.out,
        [
            progress.resume_from,
            *(p for _, p in continued),
            *(p for run in report.runs for _, p in run.checkpoints),
        ],
        config.ray.storage_path,
        args.trust_outdir,
    )
    script = Path(report.script)
    if saved.command is None:
        from rescue.worker.entrypoint import check_entry

        check_entry(script, saved.entry)

    from rescue.engine.supervisor import Job
    from rescue.search.study import RescueStudy

    check_study(report.storage, report.study)
    study = RescueStudy(
        report.storage, report.study, seed=saved.seed, load=True, search=policy.search
    )
    closed = study.close_interrupted("the supervisor stopped during this trial; rescue resume")
    set_aside(saved)
    if not args.quiet:
        print(_resume_line(saved, closed))
    job = Job(script, saved.entry, config, Path(report.config_file), saved.command)
    address = args.address or saved.address or config.ray.address
    return _supervise(
        job, policy, study, saved.out, address, args.quiet, saved, page=not args.no_page
    )


def _supervise(
    job: Job,
    policy: Policy,
    study: RescueStudy,
    out: Path,
    address: str | None,
    quiet: bool,
    saved: Saved | None = None,
    page: bool = True,
) -> int:
    """Run the supervisor under Ray (from ``saved``'s state when resuming)."""
    quiet_ray()
    from rescue.cli.console import RescueConsole
    from rescue.engine.interrupt import Interrupt
    from rescue.engine.ray_runner import RayRunner
    from rescue.engine.supervisor import Supervisor
    from rescue.mirror.base import Displays, open_mirrors
    from rescue.page.meanwhile import PagePainter

    cfg = job.config
    mirrors = open_mirrors(cfg.mirror, f"{job.script.stem} ({out})")
    interrupt = Interrupt()
    runner = RayRunner.for_output(out, address, cfg.ray, interrupt)
    painter = PagePainter(out)
    report = None
    with interrupt:  # a signal while Ray starts interrupts the first run
        try:
            runner.start()
            interrupt.reinstall()
            console = RescueConsole(quiet=quiet, run_length=cfg.budget.reports_per_run, page=page)
            display = Displays(console, [*mirrors, painter] if page else mirrors)
            supervisor = Supervisor(
                job, policy, runner, study, out, display, saved.report if saved else None
            )
            report = supervisor.rescue(saved.progress if saved else None)
        finally:
            ended = report is not None and report.outcome != "interrupted"
            with painter.finally_drawn(draw=page and ended):
                runner.shutdown()
    code = interrupt.exit_code if report.outcome == "interrupted" else report.exit_code
    if not quiet or code:
        # The last line says why, also in quiet mode when nothing was rescued: job logs end there.
        print(
            f"{report.outcome}: {report.summary} ({out})", file=sys.stderr if quiet else sys.stdout
        )
    return code


def _resume_line(saved: Saved, closed: list[int]) -> str:
    failed = f"; Optuna trial(s) {closed} marked failed" if closed else ""
    note = saved.progress.resumed
    if saved.interrupted is None or note is None:
        return f"resuming {saved.out} at run {saved.progress.next_run}{failed}"
    start = {
        "last_checkpoint": f"from its last checkpoint (report {note.get('report')})",
        "checkpoint": "from its starting checkpoint",
    }.get(note["how"], "fresh")
    return (
        f"resuming {saved.out}: run {saved.interrupted.run} was in flight "
        f"({note['reports_before']} reports, kept in {note['kept']}); restarted {start} with "
        f"the same config{failed}"
    )


def _signatures(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rescue signatures",
        description="List the failure signatures, what each looks at, and the remedies the "
        "policy maps them to.",
    )
    parser.add_argument("--policy", default="default", help="a policy name or YAML path")
    args = parser.parse_args(argv)

    from rescue.cli.signatures import print_signatures

    print_signatures(args.policy)
    return 0


def _report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rescue report",
        description="Re-render report.html and plots/ from a rescue's output folder "
        "(report.json and runs/*/metrics.jsonl), also of an interrupted rescue.",
    )
    parser.add_argument("out", type=Path, help="the rescue's or sweep's output folder (--out)")
    args = parser.parse_args(argv)

    from rescue.page.writer import write_report

    files = write_report(args.out)
    for problem in files.problems:
        print(f"rescue: warning: {problem}", file=sys.stderr)
    note = " (the rescue was interrupted: built from what was saved)" if files.interrupted else ""
    print(f"report: {files.html}{note}")
    return 0


def run() -> NoReturn:
    """The console script: :func:`main`, then exit without tearing the interpreter down.

    By the time ``main`` returns, everything rescue writes is closed and Ray is stopped. The
    teardown that is left, of the modules Ray and its gRPC loaded, takes about a second of every
    command's wall time here (bench/results/overhead_processes.md) and writes nothing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
