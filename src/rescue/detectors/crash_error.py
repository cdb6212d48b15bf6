"""What a crash says: the error at the end of its traceback, and whether that error is about
non-finite values. Code built on ``torch.distributions`` or Pyro often raises on NaN
parameters (``ValueError: Expected parameter loc ... found invalid values``) before any NaN
is reported; such a crash is a divergence that showed itself as an exception."""

from __future__ import annotations

import re

# `ValueError: ...`, `torch._C._LinAlgError: ...`, `ray.exceptions.RayTaskError(ValueError): ...`
ERROR_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:\([\w.]+\))?(?::|$)")
NON_FINITE = re.compile(r"\b(?:nan|[+-]?inf|infinity|infinite|non-?finite)\b", re.IGNORECASE)
LIMIT = 2000  # characters of the error kept to read; tensors in messages can be long


def error_text(traceback: str) -> str:
    """The exception's own text: from its last ``Name: message`` line at the start of a line to
    the end (a message can go on over several lines); the last non-blank line when there is
    none.

    >>> error_text('Traceback (most recent call last):\\n  File "t.py", line 1\\n'
    ...            'ValueError: found invalid values:\\ntensor([nan])')
    'ValueError: found invalid values:\\ntensor([nan])'
    """
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    start = next(
        (
            i
            for i in range(len(lines) - 1, -1, -1)
            if not lines[i].startswith(" ") and ERROR_LINE.match(lines[i]) and ":" in lines[i]
        ),
        None,
    )
    if start is None:
        return lines[-1].strip() if lines else "unknown error"
    return "\n".join(lines[start:])[:LIMIT]


def headline(traceback: str) -> str:
    """The first line of :func:`error_text`: what a one-line reason quotes."""
    return error_text(traceback).splitlines()[0].strip()


def about_non_finite(traceback: str) -> bool:
    """Whether the error says a value was NaN or infinite.

    >>> about_non_finite("ValueError: found invalid values:\\ntensor([nan])")
    True
    >>> about_non_finite("FileNotFoundError: no such file: 'info.txt'")
    False
    """
    return bool(NON_FINITE.search(error_text(traceback)))
