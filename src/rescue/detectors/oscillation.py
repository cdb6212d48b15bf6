from __future__ import annotations

import statistics

from rescue.detectors.base import Detector, check_count, check_fraction
from rescue.detectors.findings import Finding
from rescue.detectors.spread import pstdev
from rescue.detectors.stream import MetricStream


def _lag1_autocorrelation(residuals: list[float]) -> float:
    energy = sum(r * r for r in residuals)
    if energy == 0:
        return 0.0
    return sum(a * b for a, b in zip(residuals, residuals[1:])) / energy


class Oscillation(Detector):
    """A loss swings widely around a flat trend without making progress.

    Over the last ``window`` reports: the linear trend moves less than ``flat`` of the mean,
    the swings around it (standard deviation of the residuals) exceed ``amplitude`` of the mean,
    consecutive residuals alternate (lag-1 autocorrelation at most ``-alternation``: a step
    size too large bounces across a valley, while plain noise is uncorrelated),
    and the mean is still above ``progress`` times the loss's first level. Noise around a
    converged low loss is not oscillation: it fails the progress test, and a loss whose mean
    already meets its success target is left alone (those swings are the noise floor). Nor is a
    noisy loss while a score is near its best (``score_holding``): an RL value loss swings with
    the returns.

    >>> from rescue.detectors.base import replay
    >>> swings = [{"loss": 1.3 if i % 2 else 0.7} for i in range(30)]
    >>> replay(Oscillation(), swings)[0].reason
    'loss swings ±30% around a flat trend at 1 over 30 reports'
    """

    signature = "oscillation"

    def __init__(
        self,
        window: int = 30,
        amplitude: float = 0.15,
        flat: float = 0.1,
        progress: float = 0.5,
        score_holding: float = 0.1,
        alternation: float = 0.3,
    ) -> None:
        self.alternation = check_fraction("alternation", alternation)
        self.score_holding = check_fraction("score_holding", score_holding)
        self.window = check_count("window", window, minimum=4)
        self.amplitude = check_fraction("amplitude", amplitude)
        self.flat = check_fraction("flat", flat)
        self.progress = check_fraction("progress", progress)

    def on_report(self, stream: MetricStream) -> Finding | None:
        if stream.score_near_best(self.score_holding) is not None:
            return None
        for series in stream.losses():
            if not stream.observed(series) or len(series.recent) < self.window:
                continue
            values = series.window(self.window)
            mean = statistics.fmean(values)
            target = stream.targets.get(series.name)
            if mean <= 0 or (target is not None and target.met_by(mean)):
                continue
            if not mean > self.progress * series.first_level:
                continue  # it made progress (the cheap test first: most reports end here)
            slope, intercept = statistics.linear_regression(range(len(values)), values)
            residuals = [v - (slope * i + intercept) for i, v in enumerate(values)]
            swing = pstdev(residuals) / mean
            drift = abs(slope * len(values)) / mean
            if not (swing > self.amplitude and drift < self.flat):
                continue
            if _lag1_autocorrelation(residuals) <= -self.alternation:
                return self.finding(
                    stream,
                    series.name,
                    f"{series.name} swings ±{swing:.0%} around a flat trend at {mean:.4g} "
                    f"over {self.window} reports",
                    onset=stream.step - self.window + 1,
                    relative_swing=swing,
                    relative_drift=drift,
                    mean=mean,
                )
        return None
