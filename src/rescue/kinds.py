"""Metric kinds: what a metric means, so that detectors know which metrics to watch.

A kind comes from the config's ``metrics:`` section, else from the name:

========================================  =====================================
name                                      kind
========================================  =====================================
ends in ``loss``, ``mse``, ``mae``,        loss
``nll``, ``error``, ``err`` (or is one)
starts with ``grad_norm`` / ``gradnorm``   grad_norm
ends in ``acc``/``accuracy``/``f1``/       score
``auc``/``agree``/``reward``/``return``
``entropy`` / ending in ``_entropy``       entropy
``kl`` / ending in ``_kl``                 kl
ends in ``usage``                          class_usage
ends in ``output_std``                     output_std
ends in ``update_ratio``                   update_ratio (``rescue.watch``)
ends in ``dead_fraction``                  dead_fraction (``rescue.watch``)
ends in ``saturated_fraction``             saturated_fraction (``rescue.watch``)
ends in ``input_absmax``                   input_absmax (``rescue.watch``)
anything else                              other (only non-finite checks)
========================================  =====================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum


class Kind(str, Enum):
    LOSS = "loss"
    SCORE = "score"
    GRAD_NORM = "grad_norm"
    CLASS_USAGE = "class_usage"
    ENTROPY = "entropy"
    KL = "kl"
    OUTPUT_STD = "output_std"
    UPDATE_RATIO = "update_ratio"
    DEAD_FRACTION = "dead_fraction"
    SATURATION = "saturated_fraction"
    INPUT_SCALE = "input_absmax"
    OTHER = "other"

    @property
    def lower_is_better(self) -> bool:
        return self is Kind.LOSS


USER_KINDS = tuple(k.value for k in Kind if k is not Kind.OTHER)

_RULES: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"^(grad_?norm)"), Kind.GRAD_NORM),
    (re.compile(r"(^|_)(loss|mse|mae|nll|error|err)$"), Kind.LOSS),
    (re.compile(r"loss$"), Kind.LOSS),
    (re.compile(r"(^|_)(acc|accuracy|f1|auc|agree|reward|return)$"), Kind.SCORE),
    (re.compile(r"(^|_)entropy$"), Kind.ENTROPY),
    (re.compile(r"(^|_)kl$"), Kind.KL),
    (re.compile(r"usage$"), Kind.CLASS_USAGE),
    (re.compile(r"output_std$"), Kind.OUTPUT_STD),
    (re.compile(r"update_ratio$"), Kind.UPDATE_RATIO),
    (re.compile(r"dead_fraction$"), Kind.DEAD_FRACTION),
    (re.compile(r"saturated_fraction$"), Kind.SATURATION),
    (re.compile(r"input_absmax$"), Kind.INPUT_SCALE),
)


def infer_kind(name: str) -> Kind:
    lowered = name.lower()
    for pattern, kind in _RULES:
        if pattern.search(lowered):
            return kind
    return Kind.OTHER


class MetricKinds:
    """Resolves each metric name to its kind, config first, then the name rules."""

    def __init__(self, declared: Mapping[str, str] | None = None) -> None:
        self.declared = dict(declared or {})  # what the cfg said
        self._cache: dict[str, Kind] = {name: Kind(kind) for name, kind in (declared or {}).items()}

    def __call__(self, name: str) -> Kind:
        kind = self._cache.get(name)
        if kind is None:
            kind = self._cache[name] = infer_kind(name)
        return kind
