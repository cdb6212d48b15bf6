from __future__ import annotations

from collections import deque

from rescue.detectors.base import Detector, Streak, check_count, check_fraction
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream
from rescue.kinds import Kind


class ClassCollapse(Detector):
    """Predictions concentrate on one class.

    Reads ``class_usage`` metrics (the share of predictions per class). Fires after ``grace``
    of its observations when, for ``patience`` observations, one class takes at least ``total``
    of the predictions, or at least ``dominant`` while some class is nearly unused (below
    ``unused``), and the dominant share is not falling (by more than ``recovering`` over the
    last ``3 * patience`` observations: the minority rising is learning under way). A run that
    ends collapsed and short of a target is a collapse too. The second rule catches seed
    001's 80-85% "Neutral" without flagging an honest 89/11 split on imbalanced data.

    >>> from rescue.detectors.stream import MetricStream
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
        patience: int = 20,
        grace: int = 10,
        recovering: float = 0.005,
    ) -> None:
        self.total = check_fraction("total", total)
        self.dominant = check_fraction("dominant", dominant)
        self.unused = check_fraction("unused", unused)
        self.grace = check_count("grace", grace, minimum=0)
        self.recovering = check_fraction("recovering", recovering)
        self._streak = Streak(check_count("patience", patience))
        self._tops: dict[str, deque[float]] = {}

    def on_report(self, stream: MetricStream) -> Finding | None:
        for dist in stream.distributions_of_kind(Kind.CLASS_USAGE):
            shares = dist.last
            if len(shares) < 2 or not stream.observed(dist):
                continue
            top = max(shares)
            tops = self._tops.setdefault(dist.name, deque(maxlen=3 * self._streak.patience))
            tops.append(top)
            # The dominant share falling from its recent peak is learning under way, as in
            # the early phase of imbalanced training (the minority share rising), not a collapse.
            recovering = max(tops) - top > self.recovering
            collapsed = not recovering and self._collapsed(shares)
            if dist.count <= self.grace:
                continue
            onset = self._streak.update(dist.name, collapsed, stream.step)
            if onset is not None:
                return self._finding(
                    stream, dist.name, shares, onset, self._streak.length(dist.name)
                )
        return None

    def on_end(self, stream: MetricStream) -> Finding | None:
        """A run that ended collapsed and short of a target is a collapse, whatever its length
        (mid-run, a collapse must last ``patience`` observations after ``grace``)."""
        missed = any(
            name in stream.series and not target.met_by(stream.series[name].last)
            for name, target in stream.targets.items()
        )
        if not missed:
            return None
        for dist in stream.distributions_of_kind(Kind.CLASS_USAGE):
            tops = self._tops.get(dist.name)
            if len(dist.last) < 2 or not tops or max(tops) - tops[-1] > self.recovering:
                continue
            if self._collapsed(dist.last):
                return self._finding(stream, dist.name, dist.last, stream.step, 1)
        return None

    def _collapsed(self, shares: tuple[float, ...]) -> bool:
        top = max(shares)
        return top >= self.total or (top >= self.dominant and min(shares) < self.unused)

    def _finding(
        self, stream: MetricStream, name: str, shares: tuple[float, ...], onset: int, reports: int
    ) -> Finding:
        top = max(shares)
        k = shares.index(top)
        when = f"for {reports} reports" if reports > 1 else "at the end of the run"
        return self.finding(
            stream,
            name,
            f"{name} puts {top:.0%} of predictions on class {k} {when}",
            onset=onset,
            usage=list(shares),
            dominant_class=k,
        )
