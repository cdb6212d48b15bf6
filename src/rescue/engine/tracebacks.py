"""A crash's traceback as the user needs it: their own frames and the error, without terminal
colour codes or the frames of Ray and rescue that every crash passes through."""

from __future__ import annotations

import re
from pathlib import Path

import ray

import rescue

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+')
INTERNAL = tuple(str(Path(p.__file__).resolve().parent) for p in (ray, rescue))


def user_traceback(text: str) -> str:
    """``text`` without ANSI codes, Ray's worker banner (``ray::ImplicitFunc.train() (pid=
    ...)``), and the frames (with their source and caret lines) of files inside Ray or rescue.
    Text without any user frame is only stripped of its colour codes."""
    lines = ANSI.sub("", text).splitlines()
    kept: list[str] = []
    dropping = False
    for line in lines:
        match = FRAME.match(line)
        if match:
            dropping = _internal(match["path"])
            if not dropping:
                kept.append(line)
            continue
        if dropping and line.startswith("    "):
            continue  # the dropped frame's source line or carets
        dropping = False
        if line.startswith("ray::") or (line.strip() and set(line.strip()) <= {"^", "~"}):
            continue  # the worker banner; carets left without their frame
        kept.append(line)
    if not any(FRAME.match(line) for line in kept) and any(FRAME.match(x) for x in lines):
        return ANSI.sub("", text).strip()  # nothing of the user's: keep it all
    while kept and not kept[0].strip():
        kept.pop(0)
    if kept and FRAME.match(kept[0]):  # the header went with Ray's banner
        kept.insert(0, "Traceback (most recent call last):")
    return "\n".join(kept).rstrip()


def _internal(path: str) -> bool:
    try:
        resolved = str(Path(path).resolve())
    except OSError:
        return False
    return resolved.startswith(INTERNAL)
