"""What both commands (``rescue`` and ``rescue sweep``) do before their loop starts: read the
cfg and its policy, decide what to run, claim the output folder, open the Optuna storage, and
check that a folder may be resumed."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rescue import layout
from rescue.errors import RescueError

if TYPE_CHECKING:
    from rescue.config import RescueConfig
    from rescue.engine.trust import Launch
    from rescue.policy import Policy
    from rescue.worker.command_line import CommandSpec

T = TypeVar("T")


def start_fresh(out: Path) -> None:
    """Hold ``out`` for this rescue (or sweep); a folder that already holds one is for
    ``rescue resume``, never started over on top of its runs."""
    from rescue.engine.folder_lock import lock_folder

    lock_folder(out)
    if (out / layout.REPORT_JSON).exists():
        raise RescueError(
            f"--out {out}: already holds a rescue or sweep (report.json); "
            f"`rescue resume {out}` goes on with it, or choose another --out"
        )


def output_folder(out: Path, option: str) -> Path:
    """``out``, resolved and created; a path that is a file or cannot be written is bad input."""
    out = out.resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".rescue-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise RescueError(
            f"{option} {out}: expected a folder rescue can create and write to "
            f"({exc.strerror or exc})"
        ) from None
    return out


def opened(storage: str, open_study: Callable[[], T]) -> T:
    """``open_study()``; a storage Optuna cannot open (a misspelt URL, a missing driver, a
    journal file in a missing folder) is bad input, said in one line."""
    try:
        return open_study()
    except RescueError:
        raise
    except Exception as exc:
        raise RescueError(
            f"--storage {storage}: cannot open this Optuna storage ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None


def check_resumable(args: argparse.Namespace, recorded: Launch, out: Path) -> None:
    """That ``rescue resume`` may run what the folder records (see :mod:`rescue.engine.trust`): what
    the user names again now must match it."""
    from rescue.engine.trust import Launch, check_launch
    from rescue.search.study import default_storage

    given = None
    if args.config is not None and not args.trust_outdir:
        config, _ = read_cfg(args.config)
        script, entry, command = what_to_run(args, config)
        # A Ray address named now is the user's choice; the recorded one must be named.
        address = args.address or config.ray.address
        given = Launch.of(
            out,
            script,
            entry,
            command.to_dict() if command is not None else None,
            args.config.resolve(),
            args.storage or default_storage(out),
            recorded.address if address else None,
        )
    check_launch(out, recorded, given, args.trust_outdir)


def read_cfg(config_file: Path) -> tuple[RescueConfig, Policy]:
    """The cfg and its policy; roles are checked once the policy is known."""
    # Imports here keep `rescue --help` and bad-input errors fast.
    from rescue.config import BUILTIN_ROLES, load_config, read_config
    from rescue.policy import load_policy

    raw = read_config(config_file)  # read once, validated twice
    first = load_config(config_file, roles=_roles_in(raw), raw=raw)
    policy = load_policy(first.policy, config_file.resolve().parent)
    roles = tuple({*BUILTIN_ROLES, *policy.roles})
    return load_config(config_file, roles=roles, raw=raw), policy


def check_study(storage: str, name: str) -> None:
    from rescue.search.study import open_storage

    try:
        open_storage(storage).get_study_id_from_name(name)
    except KeyError:
        raise RescueError(f"{storage}: expected the rescue's Optuna study {name!r}") from None
    except Exception as exc:  # an unreachable database, a missing driver, ...
        raise RescueError(f"{storage}: cannot open the Optuna storage ({exc})") from None


def what_to_run(
    args: argparse.Namespace, config: RescueConfig
) -> tuple[Path, str, CommandSpec | None]:
    """``train(config)`` when the script defines it; otherwise (or with ``--command``) the
    script runs as a process with the params as flags."""
    from rescue.worker.command_line import CommandSpec
    from rescue.worker.entrypoint import check_entry, defines, takes_config

    source = config.command.tensorboard
    spec = dict(
        template=config.command.args,
        patterns=config.command.metrics,
        tensorboard=source.model_dump() if source is not None else None,
    )
    if args.command:
        try:
            argv = tuple(shlex.split(args.command))
        except ValueError as exc:
            raise RescueError(
                f"--command {args.command!r}: {exc} (quote it as a shell would)"
            ) from None
        if not argv:
            raise RescueError("--command: expected a command line, got an empty one")
        if args.script is not None:
            raise RescueError(
                f"expected a training script or --command, not both (got {args.script} and "
                f"--command {args.command!r})"
            )
        local = not (getattr(args, "address", None) or config.ray.address)
        if local and shutil.which(argv[0]) is None:  # on a cluster, the nodes may have it
            raise RescueError(
                f"--command {args.command!r}: expected a program on PATH or an executable "
                f"file; {argv[0]!r} is neither here"
            )
        named = next((a for a in argv if a.endswith(".py")), argv[0])  # names the output folder
        script = (args.script or Path(named)).resolve()
        return script, "", CommandSpec(argv, **spec)
    if args.script is None:
        raise RescueError("expected a training script (or --command CMD)")
    script = args.script.resolve()
    if args.entry is not None:
        check_entry(script, args.entry)
        return script, args.entry, None
    if defines(script, "train") and takes_config(script, "train") is not False:
        return script, "train", None
    # No train(config): a plain script (a zero-argument train() is its own main, often with
    # argparse reading the command line as the module loads).
    return script, "", CommandSpec((sys.executable, str(script)), **spec)


def cluster_address(args: argparse.Namespace, config: RescueConfig) -> str | None:
    """The Ray cluster to attach to (``--address``, else the cfg's), checked before anything
    is created; None for a fresh local Ray."""
    from rescue.engine.address import check_address

    address = getattr(args, "address", None) or config.ray.address
    if address:
        check_address(address)
    return address


def _roles_in(raw: Any) -> tuple[str, ...]:
    """Roles are checked once the policy is known; the first pass accepts any role."""
    knobs = raw.get("knobs") if isinstance(raw, dict) else None
    if not isinstance(knobs, dict):
        return ()  # the validation says what is wrong
    return tuple({str(k.get("role")) for k in knobs.values() if isinstance(k, dict)})


def quiet_ray() -> None:
    """Ray's settings for a rescue or a sweep, in the environment its processes inherit when
    it starts: no new-style Tune output, no auto loggers (the experiment names its own, see
    :func:`rescue.engine.experiment.run_experiment`), no log dedup; its loggers quiet."""
    import logging

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
