"""YAML reading with YAML 1.2 numbers: ``1e-6`` and ``1.0e4`` are floats, as users expect
(PyYAML's YAML 1.1 rules read them as strings), from a bounded regular text file: a cfg or a
policy is a few kilobytes, so anything else is refused before it is parsed."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


MAX_BYTES = 1 << 20
MAX_NODES = 100_000  # a cfg expanded (every alias copied out) is far smaller than this


class YamlFileError(yaml.YAMLError):
    """The file cannot be a cfg or a policy; the message says why, in a few words."""


class YamlSyntaxError(yaml.YAMLError):
    """The text is not valid YAML; the message is one line: the problem and where it is."""


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message (problem, context, a caret under the text) as one line:
    the problem, its line and column, and the context."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    mark = exc.problem_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = f" ({exc.context})" if exc.context else ""
    return " ".join(f"{exc.problem or 'invalid YAML'}{where}{context}".split())


def load_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``. :class:`FileNotFoundError` when there is none;
    :class:`YamlFileError` (a ``yaml.YAMLError``) for a folder, a FIFO or device, a file over
    1 MiB, bytes that are not UTF-8, or aliases that expand it beyond 100,000 values (a
    "billion laughs": a few hundred bytes that stand for billions of values)."""
    path = Path(path)
    mode = path.stat().st_mode  # FileNotFoundError as before
    if stat.S_ISDIR(mode):
        raise YamlFileError("a folder, not a file")
    if not stat.S_ISREG(mode):
        raise YamlFileError("not a regular file (a pipe or a device is never read)")
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlFileError(f"larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"not UTF-8 text (byte {exc.start})") from None
    try:
        node = yaml.compose(text, Loader=_Loader)  # aliases stay shared: nothing expands
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise YamlFileError(f"a document whose aliases expand it past {MAX_NODES} values")
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise YamlFileError("nested deeper than a cfg or policy can be") from None
    except YamlFileError:
        raise
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_one_line(exc)) from None


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias copied out; each shared node is
    counted once and remembered, so this takes time in the document's size, not in that."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_NODES + 1  # a node inside itself (a recursive alias) is a bomb too
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    total = min(total, MAX_NODES + 1)  # past the limit the exact count does not matter
    sizes[id(node)] = total
    return total
