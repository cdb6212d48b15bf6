"""Metrics read from what a plain training script prints, one report per line.

By default a line holding a JSON object is a report (its numeric values are the metrics).
With a regular expression per metric (one capture group each), a line matching any of them is a
report holding the metrics it matched, e.g. for ``Epoch 5 | Loss: 2.8456 | KL: 0.4567``:

>>> parser = OutputParser({"loss": r"Loss: (\\S+)", "kl": r"KL: (\\S+)"})
>>> parser.parse("Epoch 5 | Loss: 2.8456 | KL: 0.4567")
{'loss': 2.8456, 'kl': 0.4567}
>>> parser.parse("saving checkpoint") is None
True
>>> OutputParser().parse('{"loss": 0.25, "epoch": 3, "phase": "train"}')
{'loss': 0.25, 'epoch': 3.0}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from rescue.worker.reporting import Metrics


def compile_patterns(patterns: Mapping[str, str]) -> dict[str, re.Pattern[str]]:
    compiled = {}
    for name, pattern in patterns.items():
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"a valid regular expression ({exc})") from None
        if regex.groups != 1:
            raise ValueError(
                f"a regular expression with exactly one capture group (it has {regex.groups})"
            )
        compiled[name] = regex
    return compiled


class OutputParser:
    """Turns output lines into reports: JSON lines, or the given regular expressions."""

    def __init__(self, patterns: Mapping[str, str] | None = None) -> None:
        self.patterns = compile_patterns(patterns or {})
        # Fields left out because their number does not fit a float, and what they held: the
        # runner says so once per field, the run goes on with the rest.
        self.unreadable: dict[str, str] = {}

    def parse(self, line: str) -> Metrics | None:
        return self._by_patterns(line) if self.patterns else self._json(line)

    def _by_patterns(self, line: str) -> Metrics | None:
        metrics: Metrics = {}
        for name, regex in self.patterns.items():
            match = regex.search(line)
            if match is not None:
                value = _number(match.group(1))
                if value is not None:
                    metrics[name] = value
        return metrics or None

    def _json(self, line: str) -> Metrics | None:
        text = line.strip()
        if not (text.startswith("{") and text.endswith("}")):
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        metrics: Metrics = {}
        for name, value in data.items():
            try:
                if isinstance(value, bool):
                    continue
                if isinstance(value, (int, float)):
                    metrics[name] = float(value)
                elif isinstance(value, str) and value.strip().lower() in _NON_FINITE:
                    metrics[name] = float(value)  # JSON has no NaN: some writers print "nan"
                elif (
                    isinstance(value, list)
                    and value
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                ):
                    metrics[name] = [float(v) for v in value]
            except OverflowError:  # an integer beyond any float
                self.unreadable.setdefault(name, f"{str(value)[:40]}...")
        return metrics or None


_NON_FINITE = ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def _number(text: str) -> float | None:
    """``2.8456``, ``1e-3``, ``nan``, ``inf``; trailing punctuation such as ``0.5,`` is fine."""
    try:
        return float(text.rstrip(",;%"))
    except ValueError:
        return None
