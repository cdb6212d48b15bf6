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
    """Fail before anything runs when ``script`` has no top-level ``entry(config)``; reads,
    never runs."""
    if not defines(script, entry):
        raise RescueError(
            f"{script}: expected a function {entry}(config) at the top level "
            f"(use --entry NAME for another name)"
        )
    if takes_config(script, entry) is False:
        raise RescueError(
            f"{script}: expected {entry}(config) to take the config as an argument; "
            f"{entry}() takes none (run the script as a plain script with --command)"
        )


def _tree(script: Path) -> ast.Module:
    if not script.is_file():
        raise RescueError(f"{script}: expected an existing training script")
    try:
        text = script.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RescueError(f"{script}: expected a UTF-8 Python file ({exc.reason})") from None
    try:
        return ast.parse(text, filename=str(script))
    except SyntaxError as exc:
        raise RescueError(f"{script}:{exc.lineno}: expected valid Python ({exc.msg})") from None
    except ValueError as exc:  # null bytes
        raise RescueError(f"{script}: expected a Python source file ({exc})") from None


def defines(script: Path, entry: str) -> bool:
    """Whether ``script`` defines (or imports) ``entry`` at the top level; reads, never runs."""
    names = set()
    for node in _tree(script).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return entry in names


def takes_config(script: Path, entry: str) -> bool | None:
    """Whether the top-level function ``entry`` takes a positional argument (the config);
    None when it is not a plain ``def`` here (imported, assigned: it cannot be told)."""
    found = None
    for node in _tree(script).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry:
            args = node.args
            found = bool(args.posonlyargs or args.args or args.vararg)
    return found


def load_entry(
    script: str | Path, entry: str, fresh: bool = False
) -> Callable[[dict[str, Any]], Any]:
    """Import ``script`` as a module (its folder on ``sys.path``) and return ``entry``;
    ``fresh``: run the module's code again even if it was imported before."""
    path = Path(script).resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"rescue_user_{path.stem}_{digest}"
    module = None if fresh else sys.modules.get(name)
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
