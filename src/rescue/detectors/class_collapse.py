from __future__ import annotations

from rescue.detectors.base import Detector, Streak, check_count, check_fraction
from rescue.findings import Finding
from rescue.kinds import Kind
from rescue.stream import MetricStream


class ClassCollapse(Detector):
    """Predictions concentrate on one class.

    Reads ``class_usage`` metrics (the share of predictions per class). Fires after ``grace``
    reports when, for ``patience`` reports, one class takes at least ``total`` of the
    predictions, or at least ``dominant`` while some class is nearly unused (below
    ``unused``). The second rule catches seed 001's 80-85% "Neutral" without flagging an
    honest 89/11 split on imbalanced data.

    >>> from rescue.stream import MetricStream
    >>> stream, detector = MetricStream(), ClassCollapse(grace=0, patience=2)
    >>> for _ in range(2):  # seed 004: block everything (TP 181, FP 1419 -> 100% block)
    ...     _ = stream.append({"decision_usage": [0.0, 1.0]})
    ...     finding = detector.on_report(stream)
    >>> finding.reason
    'decision_usage puts 100% of predictions on class 1 for 2 reports'
    """

    signature = "class_collapse"

    def __init__(
        self,
        total: float = 0.95,
        dominant: float = 0.8,
        unused: float = 0.02,
        patience: int = 5,
        grace: int = 10,
    ) -> None:
        self.total = check_fraction("total", total)
        self.dominant = check_fraction("dominant", dominant)
        self.unused = check_fraction("unused", unused)
        self.grace = check_count("grace", grace, minimum=0)
        self._streak = Streak(check_count("patience", patience))

    def on_report(self, stream: MetricStream) -> Finding | None:
        for dist in stream.distributions_of_kind(Kind.CLASS_USAGE):
            shares = dist.last
            if len(shares) < 2 or stream.step < self.grace:
                continue
            top = max(shares)
            collapsed = top >= self.total or (top >= self.dominant and min(shares) < self.unused)
            onset = self._streak.update(dist.name, collapsed, stream.step)
            if onset is not None:
                k = shares.index(top)
                return self.finding(
                    stream,
                    dist.name,
                    f"{dist.name} puts {top:.0%} of predictions on class {k} for "
                    f"{stream.step - onset + 1} reports",
                    onset=onset,
                    usage=list(shares),
                    dominant_class=k,
                )
        return None
