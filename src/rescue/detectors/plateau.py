from __future__ import annotations

from rescue.detectors.base import Detector, check_count, check_fraction, check_positive
from rescue.findings import Finding
from rescue.stream import MetricStream


class Plateau(Detector):
    """A metric with a success target stops improving while still far from that target.

    No new best (by more than ``min_improvement``, relative) for ``patience`` reports, while a
    ``below`` target is missed by more than ``far`` times, or an ``above`` target by more than
    the fraction ``far_gap`` of it.

    >>> from rescue.config import Target
    >>> from rescue.stream import MetricStream
    >>> stream = MetricStream(targets={"train_mse": Target(below=0.01)})
    >>> detector = Plateau(patience=3)
    >>> for v in [0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2]:
    ...     _ = stream.append({"train_mse": v})
    ...     finding = detector.on_report(stream)
    >>> finding.signature
    'plateau'
    """

    signature = "plateau"

    def __init__(
        self,
        patience: int = 20,
        min_improvement: float = 0.01,
        far: float = 3.0,
        far_gap: float = 0.3,
    ) -> None:
        self.patience = check_count("patience", patience)
        self.min_improvement = check_fraction("min_improvement", min_improvement)
        self.far = check_positive("far", far)
        self.far_gap = check_fraction("far_gap", far_gap)
        self._best: dict[str, tuple[float, int]] = {}

    def on_report(self, stream: MetricStream) -> Finding | None:
        for name, target in stream.targets.items():
            series = stream.series.get(name)
            if series is None or not series.recent:
                continue
            level, lower = series.level, target.below is not None
            best, best_step = self._best.get(name, (level, stream.step))
            improved = (
                level < best * (1 - self.min_improvement)
                if lower
                else level > best * (1 + self.min_improvement)
            )
            if improved or name not in self._best:
                best, best_step = level, stream.step
                self._best[name] = (best, best_step)
            if stream.step - best_step < self.patience:
                continue
            if lower:
                far = target.below > 0 and level > self.far * target.below
            else:
                far = level < target.above - self.far_gap * abs(target.above)
            if far:
                return self.finding(
                    stream,
                    name,
                    f"{name} has not improved for {stream.step - best_step} reports "
                    f"(best {best:.4g}) and is far from its target {target.describe()}",
                    onset=best_step,
                    best=best,
                    level=level,
                )
        return None
