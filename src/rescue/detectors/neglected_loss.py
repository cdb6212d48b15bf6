from __future__ import annotations

from rescue.detectors.base import Detector, Streak, check_count, check_positive
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream, Series


def family(name: str) -> str:
    """Losses reported under one prefix (``val_is_loss``, ``val_nkpc_loss``) are components of
    one objective: ``val``."""
    return name.split("_", 1)[0] if "_" in name else ""


class NeglectedLoss(Detector):
    """One component of the objective barely improves while its siblings do: the objective
    under-weights it, and it misses its target.

    Losses sharing a name prefix are siblings (``val_is_loss``, ``val_nkpc_loss``, ``val_loss``).
    Improvement is scale-free: first level / current level. After ``grace`` reports, for
    ``patience`` reports in a row, a loss with a ``success`` target it does not meet has improved
    ``ratio`` times less than its best-improving sibling. Seed 000: the Phillips-curve
    residual, weighted λ_π = 0.1, lagged the IS-curve residual; the fix was λ_π = 1.

    >>> from rescue.config import Target
    >>> from rescue.detectors.base import replay
    >>> reports = [
    ...     {"val_a_loss": 1 / (1 + i) ** 2, "val_b_loss": 1 / (1 + i / 10)} for i in range(30)
    ... ]
    >>> finding = replay(NeglectedLoss(), reports, targets={"val_b_loss": Target(below=0.01)})[0]
    >>> finding.reason.split(":")[0]
    'val_b_loss improved 2.1x (0.9091 -> 0.4348) while val_a_loss improved 49x'
    """

    signature = "neglected_loss"

    def __init__(self, ratio: float = 3.0, patience: int = 5, grace: int = 10) -> None:
        self.ratio = check_positive("ratio", ratio)
        self.patience = check_count("patience", patience)
        self.grace = check_count("grace", grace, minimum=0)
        self._streak = Streak(self.patience)

    def on_report(self, stream: MetricStream) -> Finding | None:
        losses = [s for s in stream.losses() if s.first_level > 0 and s.level > 0]
        for lagging in losses:
            if not stream.observed(lagging) or lagging.count <= self.grace:
                continue
            target = stream.targets.get(lagging.name)
            if target is None or not family(lagging.name):
                continue
            siblings = [
                s for s in losses if s is not lagging and family(s.name) == family(lagging.name)
            ]
            best = max(siblings, key=_improvement, default=None)
            neglected = (
                best is not None
                and not target.met_by(lagging.level)
                and _improvement(best) > self.ratio * _improvement(lagging)
            )
            onset = self._streak.update(lagging.name, neglected, stream.step)
            if onset is not None and best is not None:
                return self.finding(
                    stream,
                    lagging.name,
                    f"{lagging.name} improved {_improvement(lagging):.2g}x "
                    f"({lagging.first_level:.4g} -> {lagging.level:.4g}) while {best.name} "
                    f"improved {_improvement(best):.3g}x: it is under-weighted",
                    onset=onset,
                    sibling=best.name,
                    improvement=_improvement(lagging),
                    sibling_improvement=_improvement(best),
                )
        return None


def _improvement(series: Series) -> float:
    return series.first_level / series.level
