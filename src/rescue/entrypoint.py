"""Finding and loading the user's training function from a script path."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rescue.errors import RescueError


def check_entry(script: Path, entry: str) -> None:
    """Fail before anything runs when ``script`` has no top-level ``entry``; reads, never runs."""
    if not defines(script, entry):
        raise RescueError(
            f"{script}: expected a function {entry}(config) at the top level "
            f"(use --entry NAME for another name)"
        )


def defines(script: Path, entry: str) -> bool:
    """Whether ``script`` defines (or imports) ``entry`` at the top level; reads, never runs."""
    if not script.is_file():
        raise RescueError(f"{script}: expected an existing training script")
    try:
        tree = ast.parse(script.read_text(), filename=str(script))
    except SyntaxError as exc:
        raise RescueError(f"{script}:{exc.lineno}: expected valid Python ({exc.msg})") from None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return entry in names


def load_entry(script: str | Path, entry: str) -> Callable[[dict[str, Any]], Any]:
    """Import ``script`` as a module (its folder on ``sys.path``) and return ``entry``."""
    path = Path(script).resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"rescue_user_{path.stem}_{digest}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RescueError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    fn = getattr(module, entry, None)
    if not callable(fn):
        raise RescueError(f"{path}: expected a function {entry}(config)")
    return fn
