from __future__ import annotations

from collections.abc import Sequence

from rescue.detectors.base import Detector, check_count, check_fraction
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream
from rescue.kinds import Kind


class SilentMetric(Detector):
    """A metric is reported but never changes while the losses move: an instrumentation bug.

    Seed 003 logged ``GradNorm 0.000`` at every step because the value returned by
    ``clip_grad_norm_`` was discarded. This is a warning for the person, not a reason to stop
    the run. Each metric is reported once. Metrics in ``ignore`` are never flagged: by default
    ``rescue.watch``'s input statistics, which are legitimately constant when the inputs are
    bounded (max |x| pinned at 1) or the whole data set is every batch.

    >>> from rescue.detectors.base import replay
    >>> reports = [{"loss": 1.0 / (i + 1), "grad_norm": 0.0} for i in range(6)]
    >>> replay(SilentMetric(window=5), reports)[0].reason
    'grad_norm has been exactly 0 for 5 reports while loss moved 80%'
    """

    signature = "silent_metric"

    def __init__(
        self,
        window: int = 20,
        moved: float = 0.05,
        ignore: Sequence[str] = ("input_mean", "input_std", "input_absmax"),
    ) -> None:
        self.window = check_count("window", window, minimum=2)
        self.moved = check_fraction("moved", moved)
        if isinstance(ignore, str) or not all(isinstance(name, str) for name in ignore):
            raise ValueError(f"`ignore` must be a list of metric names, got {ignore!r}")
        self.ignore = frozenset(ignore)
        self._flagged: set[str] = set()

    def on_report(self, stream: MetricStream) -> Finding | None:
        for series in stream.series.values():
            if series.name in self._flagged | self.ignore or not stream.observed(series):
                continue
            unchanged = series.unchanged_for  # its own observations: a metric printed once
            if unchanged < self.window:  # before training is not silent
                continue
            if series.kind is Kind.LOSS:
                continue  # a loss that never changes is stuck_constant's business
            mover = self._moving_loss(stream, stream.step - series.unchanged_since + 1)
            if mover is None:
                continue
            loss_name, change = mover
            self._flagged.add(series.name)
            return self.finding(
                stream,
                series.name,
                f"{series.name} has been exactly {series.last:g} for {unchanged} reports "
                f"while {loss_name} moved {change:.0%}",
                onset=series.unchanged_since,
                value=series.last,
                reports=unchanged,
            )
        return None

    def _moving_loss(self, stream: MetricStream, span: int) -> tuple[str, float] | None:
        for loss in stream.of_kind(Kind.LOSS):
            values = loss.window(min(span, len(loss.recent)))
            if len(values) < 2:
                continue
            low, high = min(values), max(values)
            scale = max(abs(high), abs(low))
            if scale > 0 and (high - low) / scale > self.moved:
                return loss.name, (high - low) / scale
        return None
