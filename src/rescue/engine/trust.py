"""What ``rescue resume`` takes from an output folder, and when.

An output folder is data: whoever can write to it (a shared scratch disk, a folder copied from
elsewhere) can write its report.json. So ``resume`` runs the script, command and cfg that
report.json names, opens the Optuna storage and joins the Ray cluster it names, only when

- this user started a rescue or sweep with exactly those: every start leaves a fingerprint of
  what it runs in the user's own state folder, outside any output folder; or
- the user names them again now, and they match (``rescue resume OUT train.py -c cfg.yaml``);
  or
- the user says ``--trust-outdir``.

The checkpoints it names must lie inside the folder or the cfg's ``ray.storage_path``, and they
are loaded as tensors and plain containers only (``torch.load(weights_only=True)``): see
``rescue.get_checkpoint``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rescue import layout
from rescue.errors import RescueError

DEFAULT_STORAGE = "(the study.db in the output folder)"


@dataclass(frozen=True)
class Launch:
    """What a rescue or sweep runs and connects to, as its report.json records it."""

    script: str
    entry: str
    command: tuple[str, ...] | None
    config_file: str
    storage: str
    address: str | None

    @classmethod
    def of(
        cls,
        out: Path,
        script: str | Path,
        entry: str,
        command: dict[str, Any] | None,
        config_file: str | Path,
        storage: str,
        address: str | None,
    ) -> Launch:
        from rescue.search.study import default_storage

        in_folder = storage == default_storage(out)
        return cls(
            str(script),
            entry or "",
            None if command is None else tuple(command.get("command") or ()),
            str(config_file),
            DEFAULT_STORAGE if in_folder else storage,
            address or None,
        )

    def fingerprint(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, other: Launch) -> list[str]:
        """``name: recorded -> given`` for each field that differs."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} recorded, {getattr(other, f.name)!r} given"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def state_folder() -> Path:
    """The user's own folder for rescue's state (``RESCUE_STATE_DIR``, else the XDG state
    folder)."""
    explicit = os.environ.get("RESCUE_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "rescue"


def remember(launch: Launch) -> None:
    """Record that this user started ``launch``; a folder that cannot be written only means
    ``resume`` will ask for the script and cfg again."""
    folder = state_folder() / "launches"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / launch.fingerprint()).touch()
    except OSError:
        pass


def remembered(launch: Launch) -> bool:
    return (state_folder() / "launches" / launch.fingerprint()).is_file()


def check_launch(out: Path, recorded: Launch, given: Launch | None, trust_outdir: bool) -> None:
    """Raise :class:`RescueError` unless ``recorded`` may run (see the module's docstring)."""
    if trust_outdir:
        return
    if given is not None:
        differences = recorded.differences(given)
        if differences:
            raise RescueError(
                f"{out / layout.REPORT_JSON}: the folder was started otherwise than you say now ("
                + "; ".join(differences)
                + "); pass what it was started with, or --trust-outdir"
            )
        return
    if remembered(recorded):
        return
    what = recorded.command and " ".join(recorded.command) or recorded.script
    raise RescueError(
        f"{out / layout.REPORT_JSON}: names {what!r} with the cfg {recorded.config_file!r}, which "
        "you did not start from this account (no fingerprint in "
        f"{state_folder() / 'launches'}); to run them, name them again: "
        f"`rescue resume {out} SCRIPT --config CFG` (or --command CMD), or pass --trust-outdir"
    )


def check_checkpoints(
    out: Path, paths: Iterable[str | None], storage_path: str | None, trust_outdir: bool
) -> None:
    """Raise :class:`RescueError` for a checkpoint outside ``out`` and the cfg's
    ``ray.storage_path``: a pickle placed anywhere else is not ours to load."""
    if trust_outdir:
        return
    roots = [out.resolve()]
    remote = None
    if storage_path:
        parsed = urlparse(storage_path)
        if parsed.scheme in ("", "file"):
            roots.append(Path(parsed.path if parsed.scheme else storage_path).resolve())
        else:
            remote = storage_path.rstrip("/") + "/"
    for path in paths:
        if path is None:
            continue
        parsed = urlparse(path)
        if parsed.scheme in ("", "file"):
            local = Path(parsed.path if parsed.scheme else path).resolve()
            if any(local.is_relative_to(root) for root in roots):
                continue
        elif remote is not None and path.startswith(remote):
            continue
        raise RescueError(
            f"{out / layout.REPORT_JSON}: names the checkpoint {path!r}, outside the folder and "
            "the cfg's ray.storage_path; rescue loads no checkpoint from elsewhere "
            "(--trust-outdir if you trust this folder)"
        )
