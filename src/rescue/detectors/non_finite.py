from __future__ import annotations

import math

from rescue.detectors.base import Detector
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream


class NonFinite(Detector):
    """Any reported metric became NaN or ±inf. (A training function that raises an error
    about NaN or inf values is read as this signature too, by the run's monitor.)

    >>> from rescue.detectors.stream import MetricStream
    >>> stream, detector = MetricStream(), NonFinite()
    >>> _ = stream.append({"loss": float("nan")})
    >>> detector.on_report(stream).reason
    'loss became nan at report 0'
    """

    signature = "non_finite"

    def on_report(self, stream: MetricStream) -> Finding | None:
        for name, value in stream.latest.items():
            if isinstance(value, list):
                bad = next((v for v in value if not math.isfinite(v)), None)
            else:  # a scalar: the usual case, tested without a generator
                bad = None if math.isfinite(value) else value
            if bad is not None:
                series = stream.series.get(name)
                before = series.recent[-1] if series and series.recent else None
                return self.finding(
                    stream,
                    name,
                    f"{name} became {bad} at report {stream.step}",
                    value=str(bad),
                    last_finite=before,
                )
        return None
