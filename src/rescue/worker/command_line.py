"""The command line of one run of a plain script: the run's params become flags.

By default every param is passed as ``--name value``; a template in cfg.yaml
(``command.args``) fixes another style, with ``{name}`` standing for a param's value:

>>> build_argv(["python", "train.py"], {"lr": 0.001, "epochs": 5})
['python', 'train.py', '--lr', '0.001', '--epochs', '5']
>>> build_argv(["python", "train.py"], {"lr": 0.001}, ["--learning-rate={lr}", "--fast"])
['python', 'train.py', '--learning-rate=0.001', '--fast']
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CommandSpec:
    """A plain script's run: the command (``python train.py``), the flag template, and the
    metric patterns of its output (None: JSON lines)."""

    command: tuple[str, ...]
    template: tuple[str, ...] | None = None
    patterns: dict[str, str] | None = None
    tensorboard: dict[str, Any] | None = None  # {logdir, tags}: event files to read metrics from

    def to_dict(self) -> dict[str, Any]:
        """As report.json's ``resume`` entry keeps it."""
        template = None if self.template is None else list(self.template)
        data = {"command": list(self.command), "template": template, "patterns": self.patterns}
        if self.tensorboard is not None:
            data["tensorboard"] = self.tensorboard
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CommandSpec | None:
        if data is None:
            return None
        template = data.get("template")
        return cls(
            tuple(data["command"]),
            None if template is None else tuple(template),
            data.get("patterns"),
            data.get("tensorboard"),
        )


class CommandError(ValueError):
    pass


def check_template(template: Sequence[str], params: Mapping[str, Any]) -> None:
    for arg in template:
        for _, field, _, _ in string.Formatter().parse(arg):
            if field is not None and field not in params:
                raise CommandError(
                    f"placeholders that name params (one of {sorted(params)}); got {{{field}}}"
                )


def build_argv(
    command: Sequence[str], params: Mapping[str, Any], template: Sequence[str] | None = None
) -> list[str]:
    if template is None:
        flags = [part for name, value in params.items() for part in (f"--{name}", str(value))]
    else:
        check_template(template, params)
        flags = [arg.format_map({k: str(v) for k, v in params.items()}) for arg in template]
    return [*command, *flags]
