from __future__ import annotations

import math

from rescue.detectors.base import Detector, Streak, check_count, check_fraction, check_positive
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream
from rescue.kinds import Kind


class UniformCollapse(Detector):
    """Predictions spread uniformly: entropy at its maximum log K, with KL to the prior ~ 0.

    K is the length of a ``class_usage`` metric, or ``classes``. Fires after ``grace`` reports
    when an ``entropy`` metric stays above ``near_max`` * log K for ``patience`` reports and
    every ``kl`` metric is below ``kl_eps`` (seed 001: entropy 1.4 for 4 regimes, KL 0).

    >>> from rescue.detectors.stream import MetricStream
    >>> stream, detector = MetricStream(), UniformCollapse(grace=0, patience=2, classes=4)
    >>> for _ in range(2):
    ...     _ = stream.append({"entropy": 1.386, "kl": 0.0})
    ...     finding = detector.on_report(stream)
    >>> finding.signature
    'uniform_collapse'
    """

    signature = "uniform_collapse"

    def __init__(
        self,
        near_max: float = 0.97,
        kl_eps: float = 0.01,
        patience: int = 10,
        grace: int = 20,
        classes: int | None = None,
    ) -> None:
        self.near_max = check_fraction("near_max", near_max)
        self.kl_eps = check_positive("kl_eps", kl_eps)
        self.grace = check_count("grace", grace, minimum=0)
        self.classes = None if classes is None else check_count("classes", classes, minimum=2)
        self._streak = Streak(check_count("patience", patience))

    def on_report(self, stream: MetricStream) -> Finding | None:
        k = self.classes or max(
            (len(d.last) for d in stream.distributions_of_kind(Kind.CLASS_USAGE)), default=0
        )
        if k < 2:
            return None
        max_entropy = math.log(k)
        kls = list(stream.of_kind(Kind.KL))
        kl_zero = all(abs(kl.level) < self.kl_eps for kl in kls)
        for series in stream.of_kind(Kind.ENTROPY):
            if not stream.observed(series) or series.count <= self.grace:
                continue
            uniform = series.level >= self.near_max * max_entropy and kl_zero
            onset = self._streak.update(series.name, uniform, stream.step)
            if onset is not None:
                kl_text = ", ".join(f"{kl.name} {kl.level:.3g}" for kl in kls) or "no KL reported"
                return self.finding(
                    stream,
                    series.name,
                    f"{series.name} is {series.level:.3f}, at its maximum log {k} = "
                    f"{max_entropy:.3f} ({kl_text}): predictions are uniform",
                    onset=onset,
                    entropy=series.level,
                    max_entropy=max_entropy,
                )
        return None
