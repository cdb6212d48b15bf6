"""Detectors by signature name. Users add their own with :func:`register_detector`, or by
naming ``module:Class`` under ``detector:`` in a policy file."""

from __future__ import annotations

import importlib

from rescue.detectors.base import Detector
from rescue.detectors.class_collapse import ClassCollapse
from rescue.detectors.dead_output import DeadOutput
from rescue.detectors.divergence import Divergence
from rescue.detectors.dying_units import DyingUnits
from rescue.detectors.explosion import Explosion
from rescue.detectors.generalization_gap import GeneralizationGap
from rescue.detectors.large_updates import LargeUpdates
from rescue.detectors.missed_target import MissedTarget
from rescue.detectors.neglected_loss import NeglectedLoss
from rescue.detectors.non_finite import NonFinite
from rescue.detectors.opposing_losses import OpposingLosses
from rescue.detectors.oscillation import Oscillation
from rescue.detectors.plateau import Plateau
from rescue.detectors.saturation import Saturation
from rescue.detectors.silent_metric import SilentMetric
from rescue.detectors.stuck_constant import StuckConstant
from rescue.detectors.uniform_collapse import UniformCollapse
from rescue.detectors.unscaled_inputs import UnscaledInputs

# Signatures the supervisor itself raises from how a run ended, not from its metrics:
# ``misconfigured`` is a run that ended without the metrics the cfg needs (no report at all,
# a success metric never reported, a command.metrics pattern that never matched).
RUN_SIGNATURES = ("crash", "stall", "misconfigured")

_REGISTRY: dict[str, type[Detector]] = {
    cls.signature: cls
    for cls in (
        NonFinite,
        Divergence,
        Explosion,
        StuckConstant,
        Plateau,
        Oscillation,
        DeadOutput,
        SilentMetric,
        OpposingLosses,
        ClassCollapse,
        UniformCollapse,
        GeneralizationGap,
        NeglectedLoss,
        MissedTarget,
        LargeUpdates,
        UnscaledInputs,
        Saturation,
        DyingUnits,
    )
}


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Make ``cls`` available to policies under ``cls.signature``; usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        raise TypeError(f"{cls!r} is not a Detector subclass")
    _REGISTRY[cls.signature] = cls
    return cls


def detector_class(signature: str, path: str | None = None) -> type[Detector]:
    """The class for ``signature``, or the one at ``path`` (``package.module:Class``)."""
    if path:
        module_name, _, attr = path.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        return register_detector(cls)
    try:
        return _REGISTRY[signature]
    except KeyError:
        raise KeyError(f"no detector for signature {signature!r}") from None


def known_signatures() -> list[str]:
    return [*_REGISTRY, *RUN_SIGNATURES]


__all__ = ["Detector", "register_detector", "detector_class", "known_signatures"]
