"""The ``rescue`` command.

    rescue train.py --config cfg.yaml [--entry NAME] [--out DIR] [--storage URL]
                   [--address ADDR] [--seed N] [--quiet]
    rescue --command "python plain.py" --config cfg.yaml ...
    rescue signatures [--policy NAME_OR_PATH]
    rescue report OUTDIR
    rescue sweep train.py --config cfg.yaml --trials N --parallel K ...   (see sweep_cli)

Exit codes: 0 healthy or rescued, 3 not rescued, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rescue.errors import RescueError

if TYPE_CHECKING:
    from rescue.command_line import CommandSpec
    from rescue.config import RescueConfig

USAGE_EXIT = 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["signatures"]:
            return _signatures(argv[1:])
        if argv[:1] == ["report"]:
            return _report(argv[1:])
        if argv[:1] == ["sweep"]:
            from rescue.sweep_cli import sweep_main

            return sweep_main(argv[1:])
        return _rescue(argv)
    except RescueError as exc:
        print(f"rescue: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _rescue_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rescue",
        description="Run a training script under Ray Tune, diagnose failures from its metrics "
        "and restart it with Optuna-chosen fixes. Also: `rescue signatures`, `rescue report`.",
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
    parser.add_argument("--storage", help="Optuna storage URL (default: SQLite in --out)")
    parser.add_argument("--address", help="an existing Ray cluster (default: start local Ray)")
    parser.add_argument("--seed", type=int, default=0, help="the Optuna sampler's seed")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing")
    return parser


def _rescue(argv: list[str]) -> int:
    args = _rescue_parser().parse_args(argv)
    # Imports here keep `rescue --help` and bad-input errors fast.
    from rescue.config import BUILTIN_ROLES, load_config
    from rescue.policy import load_policy

    raw_cfg = load_config(args.config, roles=_all_roles(args.config))
    policy = load_policy(raw_cfg.policy, args.config.resolve().parent)
    config = load_config(args.config, roles=tuple({*BUILTIN_ROLES, *policy.roles}))
    script, entry, command = _what_to_run(args, config)

    out = args.out or Path("rescue-runs") / f"{script.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    _quiet_ray()

    from rescue.console import RescueConsole
    from rescue.ray_runner import RayRunner
    from rescue.study import RescueStudy, default_storage
    from rescue.supervisor import Job, Supervisor

    storage = args.storage or default_storage(out)
    study = RescueStudy(storage, name=f"rescue-{out.name}", seed=args.seed)
    runner = RayRunner(
        storage_path=out / "ray",
        address=args.address or config.ray.address,
        cpus_per_run=config.ray.cpus_per_run,
        gpus_per_run=config.ray.gpus_per_run,
    )
    runner.start()
    try:
        job = Job(script, entry, config, args.config.resolve(), command)
        display = RescueConsole(quiet=args.quiet)
        report = Supervisor(job, policy, runner, study, out, display).rescue()
    finally:
        runner.shutdown()
    if not args.quiet:
        print(f"{report.outcome}: {report.summary} ({out})")
    return report.exit_code


def _what_to_run(
    args: argparse.Namespace, config: RescueConfig
) -> tuple[Path, str, CommandSpec | None]:
    """``train(config)`` when the script defines it; otherwise (or with ``--command``) the
    script runs as a process with the params as flags."""
    from rescue.command_line import CommandSpec
    from rescue.entrypoint import check_entry, defines

    spec = dict(template=config.command.args, patterns=config.command.metrics)
    if args.command:
        argv = tuple(shlex.split(args.command))
        if not argv:
            raise RescueError("--command: expected a command line, got an empty one")
        named = next((a for a in argv if a.endswith(".py")), argv[0])  # names the output folder
        script = (args.script or Path(named)).resolve()
        return script, "", CommandSpec(argv, **spec)
    if args.script is None:
        raise RescueError("expected a training script (or --command CMD)")
    script = args.script.resolve()
    if args.entry is not None or defines(script, "train"):
        entry = args.entry or "train"
        check_entry(script, entry)
        return script, entry, None
    return script, "", CommandSpec((sys.executable, str(script)), **spec)


def _all_roles(config_file: Path) -> tuple[str, ...]:
    """Roles are checked once the policy is known; the first pass accepts any role."""
    from rescue.yaml_loader import load_yaml

    try:
        raw = load_yaml(config_file)
        knobs = raw.get("knobs") or {}
        return tuple({str(k.get("role")) for k in knobs.values() if isinstance(k, dict)})
    except Exception:  # the real load reports the problem
        return ()


def _quiet_ray() -> None:
    import logging

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _signatures(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rescue signatures",
        description="List the failure signatures, what each looks at, and the remedies the "
        "policy maps them to.",
    )
    parser.add_argument("--policy", default="default", help="a policy name or YAML path")
    args = parser.parse_args(argv)

    from rescue.signature_table import print_signatures

    print_signatures(args.policy)
    return 0


def _report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rescue report",
        description="Re-render report.html and plots/ from a rescue's output folder "
        "(report.json and runs/*/metrics.jsonl), also of an interrupted rescue.",
    )
    parser.add_argument("out", type=Path, help="the rescue's output folder (its --out)")
    args = parser.parse_args(argv)

    from rescue.report_writer import write_report

    files = write_report(args.out)
    for problem in files.problems:
        print(f"rescue: warning: {problem}", file=sys.stderr)
    note = " (the rescue was interrupted: built from what was saved)" if files.interrupted else ""
    print(f"report: {files.html}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
