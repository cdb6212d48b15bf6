from __future__ import annotations

from rescue.detectors.base import Detector, Streak, check_count, check_fraction, check_positive
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream
from rescue.kinds import Kind


class DeadOutput(Detector):
    """The network has stopped producing signal: an exactly zero gradient with losses that
    barely moved, or outputs collapsed to a constant.

    Either a ``grad_norm`` metric (a whole-model norm, or ``rescue.watch``'s smallest per-layer
    norm) stays below ``grad_eps`` for ``patience`` of its observations while every loss has
    barely moved over the whole run (its levels span less than ``flat`` of where it started:
    an output bias learning the class prior creeps, a network learning moves), or an
    ``output_std`` metric falls below ``collapse`` times its first level (or below
    ``output_eps``) for ``patience`` observations. A zero gradient next to a loss that moves a
    lot is a logging bug instead (``silent_metric``, seed 003).

    >>> from rescue.detectors.stream import MetricStream
    >>> stream, detector = MetricStream(), DeadOutput(patience=3)
    >>> for _ in range(4):
    ...     _ = stream.append({"loss": 0.69, "grad_norm": 0.0})
    ...     finding = detector.on_report(stream)
    >>> finding.signature
    'dead_output'
    """

    signature = "dead_output"

    def __init__(
        self,
        patience: int = 10,
        grad_eps: float = 1e-8,
        flat: float = 0.2,
        collapse: float = 0.01,
        output_eps: float = 1e-8,
    ) -> None:
        self.patience = check_count("patience", patience)
        self.grad_eps = check_positive("grad_eps", grad_eps)
        self.flat = check_fraction("flat", flat)
        self.collapse = check_fraction("collapse", collapse)
        self.output_eps = check_positive("output_eps", output_eps)
        self._streak = Streak(self.patience)

    def on_report(self, stream: MetricStream) -> Finding | None:
        for series in stream.of_kind(Kind.GRAD_NORM):
            if not stream.observed(series):
                continue
            zero = abs(series.last) < self.grad_eps and self._losses_barely_moved(stream)
            onset = self._streak.update(series.name, zero, stream.step)
            if onset is not None:
                return self.finding(
                    stream,
                    series.name,
                    f"{series.name} has been {series.last:.2g} for "
                    f"{self._streak.length(series.name)} reports while every loss barely "
                    "moved: no gradient reaches the weights",
                    onset=onset,
                    grad_norm=series.last,
                )
        for series in stream.of_kind(Kind.OUTPUT_STD):
            if not stream.observed(series):
                continue
            first = series.first
            collapsed = abs(series.last) < max(self.output_eps, self.collapse * abs(first))
            onset = self._streak.update(series.name, collapsed, stream.step)
            if onset is not None:
                return self.finding(
                    stream,
                    series.name,
                    f"{series.name} fell to {series.last:.3g} (first {first:.3g}): the outputs "
                    f"are a constant",
                    onset=onset,
                    output_std=series.last,
                    first=first,
                )
        return None

    def _losses_barely_moved(self, stream: MetricStream) -> bool:
        for loss in stream.of_kind(Kind.LOSS):
            if not loss.recent:
                continue
            span = loss.max_level - loss.min_level
            scale = max(abs(loss.first), abs(loss.max_level))
            if scale and span / scale > self.flat:
                return False
        return True
