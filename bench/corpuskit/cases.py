"""Corpus cases: one folder each under ``bench/corpus/cases/``.

A case folder holds:

- ``cfg.yaml``: exactly what ``rescue`` is given (params with the setting under test, knobs,
  ``success:`` targets, ``budget:``; ``command:`` for a plain script);
- ``case.yaml``: what the case is (see :class:`Case`), written by hand;
- ``measured.json``: the ground truth, written by ``python bench/corpus.py measure``.

``case.yaml`` keys:

- ``script``: a ``train(config)`` script, or ``command``: a plain script's command line (a list),
  paths relative to the case folder; rescue runs with the case folder as working directory;
- ``expect``: ``sick`` (the shipped setting fails ``success``; some value inside the knobs'
  domains meets it) or ``healthy`` (the shipped setting meets it and must not be restarted);
- ``split``: ``dev`` (tune on it) or ``test`` (measure on it, never tune);
- ``family``: the failure class (sick) or the healthy shape (healthy);
- ``style``: how it reports (``every_step``, ``every_10``, ``eval_50``, ``end_only``, ...);
- ``origin``: ``matrix`` (the generated fault matrix), ``shape`` (a healthy shape), ``real``
  (a public training script run unmodified);
- ``grid``: the values to measure, per knob: ``{lr: [1e-5, 1e-4, ...]}`` (one knob at a time,
  the others at their shipped values);
- ``notes``: free text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rescue.config import RescueConfig, load_config
from rescue.yaml_loader import load_yaml

ROOT = Path(__file__).resolve().parents[1] / "corpus"
CASES = ROOT / "cases"

Expect = Literal["sick", "healthy"]
SPLITS = ("dev", "test")
ORIGINS = ("matrix", "shape", "real")


class CaseError(ValueError):
    pass


@dataclass
class Case:
    name: str
    folder: Path
    expect: Expect
    split: str
    family: str
    style: str
    origin: str
    cfg: RescueConfig
    script: Path | None = None
    command: list[str] | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    notes: str = ""

    @property
    def cfg_path(self) -> Path:
        return self.folder / "cfg.yaml"

    @property
    def measured_path(self) -> Path:
        return self.folder / "measured.json"

    def measured(self) -> dict[str, Any] | None:
        if not self.measured_path.is_file():
            return None
        return json.loads(self.measured_path.read_text())

    def program(self) -> Path:
        """The file whose content defines the case's training (for cache keys)."""
        if self.script is not None:
            return self.script
        assert self.command is not None
        scripts = [self.folder / part for part in self.command if part.endswith(".py")]
        if not scripts:
            raise CaseError(f"{self.name}: command names no .py file")
        return scripts[0].resolve()


def load_case(folder: Path) -> Case:
    meta_path = folder / "case.yaml"
    meta = load_yaml(meta_path) or {}
    where = f"{meta_path}"
    for key in ("expect", "split", "family", "origin"):
        if key not in meta:
            raise CaseError(f"{where}: {key}: expected this required key")
    if meta["expect"] not in ("sick", "healthy"):
        raise CaseError(f"{where}: expect: expected sick or healthy, got {meta['expect']!r}")
    if meta["split"] not in SPLITS:
        raise CaseError(f"{where}: split: expected one of {SPLITS}, got {meta['split']!r}")
    if meta["origin"] not in ORIGINS:
        raise CaseError(f"{where}: origin: expected one of {ORIGINS}, got {meta['origin']!r}")
    if ("script" in meta) == ("command" in meta):
        raise CaseError(f"{where}: expected exactly one of script or command")
    script = (folder / meta["script"]).resolve() if "script" in meta else None
    if script is not None and not script.is_file():
        raise CaseError(f"{where}: script: expected an existing file, got {meta['script']!r}")
    cfg = load_config(folder / "cfg.yaml")
    if not cfg.success:
        raise CaseError(f"{folder / 'cfg.yaml'}: success: every corpus case declares a target")
    grid = {str(k): list(v) for k, v in (meta.get("grid") or {}).items()}
    for knob in grid:
        if knob not in cfg.knobs:
            raise CaseError(f"{where}: grid.{knob}: expected a knob of cfg.yaml")
    return Case(
        name=folder.name,
        folder=folder.resolve(),
        expect=meta["expect"],
        split=meta["split"],
        family=str(meta["family"]),
        style=str(meta.get("style", "every_step")),
        origin=meta["origin"],
        cfg=cfg,
        script=script,
        command=[str(p) for p in meta["command"]] if "command" in meta else None,
        grid=grid,
        notes=str(meta.get("notes", "")),
    )


def load_cases(names: list[str] | None = None, split: str | None = None) -> list[Case]:
    folders = sorted(p for p in CASES.iterdir() if (p / "case.yaml").is_file())
    cases = [load_case(f) for f in folders if names is None or f.name in names]
    if names is not None:
        missing = set(names) - {c.name for c in cases}
        if missing:
            raise CaseError(f"no such case(s): {sorted(missing)}")
    return [c for c in cases if split is None or c.split == split]
