from __future__ import annotations

from rescue.config import Target
from rescue.detectors.base import Detector, check_count, check_fraction, check_positive
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream, Series


class Plateau(Detector):
    """A metric with a success target stops improving while still far from that target.

    No new best level (by more than ``min_improvement``, relative) for ``patience`` of its
    observations, while a ``below`` target is missed by more than ``far`` times, or an
    ``above`` target by more than the fraction ``far_gap`` of it. A flat stretch may be the
    phase before a scheduled drop of the learning rate, so mid-run a plateau stops a run only
    once ``elapsed`` of its declared length (``budget.reports_per_run``) is done; without a
    declared length it is judged when the run ends.

    >>> from rescue.config import Target
    >>> from rescue.detectors.stream import MetricStream
    >>> stream = MetricStream(targets={"train_mse": Target(below=0.01)}, length=10)
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
        elapsed: float = 0.5,
    ) -> None:
        self.patience = check_count("patience", patience)
        self.min_improvement = check_fraction("min_improvement", min_improvement)
        self.far = check_positive("far", far)
        self.far_gap = check_fraction("far_gap", far_gap)
        self.elapsed = check_fraction("elapsed", elapsed)
        self._best: dict[str, tuple[float, int, int]] = {}

    def on_report(self, stream: MetricStream) -> Finding | None:
        found = None
        for name, target in stream.targets.items():
            series = stream.series.get(name)
            if series is None or not series.recent or not stream.observed(series):
                continue
            found = found or self._judge(stream, series, target)
        elapsed = stream.elapsed()
        return found if elapsed is not None and elapsed >= self.elapsed else None

    def on_end(self, stream: MetricStream) -> Finding | None:
        for name, target in stream.targets.items():
            series = stream.series.get(name)
            if series is not None and series.recent and name in self._best:
                found = self._verdict(stream, series, target)
                if found is not None:
                    return found
        return None

    def _judge(self, stream: MetricStream, series: Series, target: Target) -> Finding | None:
        name, level, lower = series.name, series.level, target.below is not None
        best, best_index, best_step = self._best.get(name, (level, series.count, stream.step))
        improved = (
            level < best * (1 - self.min_improvement)
            if lower
            else level > best * (1 + self.min_improvement)
        )
        if improved or name not in self._best:
            self._best[name] = (level, series.count, stream.step)
        return self._verdict(stream, series, target)

    def _verdict(self, stream: MetricStream, series: Series, target: Target) -> Finding | None:
        best, best_index, best_step = self._best[series.name]
        waited = series.count - best_index  # in its own observations
        if waited < self.patience:
            return None
        level = series.level
        if target.below is not None:
            far = target.below > 0 and level > self.far * target.below
        else:
            far = level < target.above - self.far_gap * abs(target.above)
        if not far:
            return None
        return self.finding(
            stream,
            series.name,
            f"{series.name} has not improved for {waited} reports "
            f"(best {best:.4g}) and is far from its target {target.describe()}",
            onset=best_step,
            best=best,
            level=level,
        )
