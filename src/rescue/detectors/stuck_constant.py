from __future__ import annotations

import statistics

from rescue.detectors.base import Detector, check_count, check_flag, check_fraction
from rescue.detectors.findings import Finding
from rescue.detectors.spread import pstdev
from rescue.detectors.stream import MetricStream


class StuckConstant(Detector):
    """A loss sits at one value for a long time and never improved from where it started.

    Over the last ``window`` reports the loss varies by less than ``tolerance`` (relative
    standard deviation), its linear trend moves it by less than ``drift`` (so slow, steady
    progress is not "stuck"), and it stands within ``progress`` of its first level. A loss stuck at
    about 1.0 is the classic sign of targets normalised per batch (seed 004).

    A loss that does not move at all (relative spread at most ``exact``: a dead network's
    held-out loss) is stuck at once. One that is merely flat may be a stage of healthy
    training (deep networks from small weights sit on a plateau at their starting loss before
    a sudden drop), so it is judged once ``elapsed`` of the declared run length is done, or
    when the run ends if no length is declared.

    >>> from rescue.detectors.stream import MetricStream
    >>> stream, detector = MetricStream(length=6), StuckConstant(window=5)
    >>> for v in [1.0, 1.01, 0.99, 1.0, 1.0, 1.01]:
    ...     _ = stream.append({"value_loss": v})
    ...     finding = detector.on_report(stream)
    >>> "about 1.0" in finding.reason
    True
    """

    signature = "stuck_constant"

    def __init__(
        self,
        window: int = 20,
        tolerance: float = 0.05,
        drift: float = 0.02,
        progress: float = 0.1,
        score_guard: bool = True,
        exact: float = 1.0e-6,
        elapsed: float = 0.5,
    ) -> None:
        self.window = check_count("window", window, minimum=3)
        self.tolerance = check_fraction("tolerance", tolerance)
        self.drift = check_fraction("drift", drift)
        self.progress = check_fraction("progress", progress)
        self.score_guard = check_flag("score_guard", score_guard)
        self.exact = check_fraction("exact", exact)
        self.elapsed = check_fraction("elapsed", elapsed)

    def on_report(self, stream: MetricStream) -> Finding | None:
        elapsed = stream.elapsed()
        return self._judge(stream, merely_flat=elapsed is not None and elapsed >= self.elapsed)

    def on_end(self, stream: MetricStream) -> Finding | None:
        return self._judge(stream, merely_flat=True)

    def _judge(self, stream: MetricStream, merely_flat: bool) -> Finding | None:
        """``merely_flat``: whether a loss that still moves a little may be called stuck."""
        for series in stream.losses():
            if not stream.observed(series) or len(series.recent) < self.window:
                continue
            values = series.window(self.window)
            mean = statistics.fmean(values)
            target = stream.targets.get(series.name)
            if mean == 0 or (target is not None and target.met_by(mean)):
                continue  # flat at a level that meets its target is done, not stuck
            if not abs(mean - series.first_level) <= self.progress * abs(series.first_level):
                continue  # it improved (the cheap test first: most reports end here)
            spread = pstdev(values) / abs(mean)
            if spread >= self.tolerance or (spread > self.exact and not merely_flat):
                continue
            slope = statistics.linear_regression(range(len(values)), values).slope
            if abs(slope * len(values) / mean) >= self.drift:
                continue
            # Only once a loss looks stuck: the guard fits a trend to every score.
            if self.score_guard and stream.score_improving(self.window) is not None:
                return None
            about_one = abs(mean - 1.0) < 0.05
            hint = " (about 1.0: targets normalised per batch?)" if about_one else ""
            return self.finding(
                stream,
                series.name,
                f"{series.name} has stayed at {mean:.4g} ±{spread:.1%} for "
                f"{self.window} reports{hint}",
                onset=stream.step - self.window + 1,
                mean=mean,
                relative_std=spread,
                about_one=about_one,
            )
        return None
