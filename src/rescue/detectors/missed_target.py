from __future__ import annotations

from rescue.detectors.base import Detector
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream


class MissedTarget(Detector):
    """The run completed but missed a ``success`` target (judged on the last reported value).

    >>> from rescue.config import Target
    >>> from rescue.detectors.stream import MetricStream
    >>> stream = MetricStream(targets={"test_mse": Target(below=0.015)})
    >>> _ = stream.append({"test_mse": 0.02})
    >>> MissedTarget().on_end(stream).reason
    'test_mse ended at 0.02, target < 0.015'
    """

    signature = "missed_target"

    def on_report(self, stream: MetricStream) -> Finding | None:
        return None

    def on_end(self, stream: MetricStream) -> Finding | None:
        for name, target in stream.targets.items():
            series = stream.series.get(name)
            if series is None:
                continue  # not a miss but a configuration problem: the supervisor says so
            if not target.met_by(series.last):
                return self.finding(
                    stream,
                    name,
                    f"{name} ended at {series.last:.4g}, target {target.describe()}",
                    last=series.last,
                    best=series.min_level if target.below is not None else series.max_level,
                )
        return None
