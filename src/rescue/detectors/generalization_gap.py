from __future__ import annotations

from rescue.detectors.base import Detector, Streak, check_count, check_fraction, check_positive
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream, Series
from rescue.kinds import Kind

HELD_OUT_PREFIXES = ("val_", "valid_", "validation_", "test_", "eval_", "heldout_", "holdout_")


def training_partner(stream: MetricStream, held_out: str) -> Series | None:
    """``val_loss`` pairs with ``train_loss`` or ``loss``; ``test_mse`` with ``train_mse``."""
    for prefix in HELD_OUT_PREFIXES:
        if held_out.startswith(prefix):
            base = held_out[len(prefix) :]
            for name in (f"train_{base}", base):
                if name in stream.series:
                    return stream.series[name]
    return None


class GeneralizationGap(Detector):
    """The training loss looks fine but the held-out loss stays high or worsens.

    A held-out loss (``val_``/``test_``/``eval_``… prefix) paired with its training loss: after
    ``grace`` reports, for ``patience`` reports in a row, the held-out level is more than
    ``ratio`` times the training level and has not improved by ``min_improvement`` over the
    last ``patience`` reports. Training on an unrepresentative or drifting distribution
    (seed 000: loss 1.15 against 0.00002) looks like this; an ordinary overfitting gap (a
    held-out loss 2-5x the training loss near convergence) is not a failure, hence ``ratio``
    10 by default.

    >>> from rescue.detectors.stream import MetricStream
    >>> stream, detector = MetricStream(), GeneralizationGap(grace=0, patience=3)
    >>> for i in range(8):
    ...     _ = stream.append({"loss": 0.5 / (i + 1), "val_loss": 1.15})
    ...     finding = detector.on_report(stream)
    >>> finding.metric
    'val_loss'
    """

    signature = "generalization_gap"

    def __init__(
        self,
        ratio: float = 10.0,
        min_improvement: float = 0.05,
        patience: int = 10,
        grace: int = 10,
    ) -> None:
        self.ratio = check_positive("ratio", ratio)
        self.min_improvement = check_fraction("min_improvement", min_improvement)
        self.patience = check_count("patience", patience)
        self.grace = check_count("grace", grace, minimum=0)
        self._streak = Streak(self.patience)

    def on_report(self, stream: MetricStream) -> Finding | None:
        for held in stream.of_kind(Kind.LOSS):
            if not stream.observed(held) or held.count <= self.grace:
                continue
            train = training_partner(stream, held.name)
            if train is None or train.level <= 0 or len(held.levels) <= self.patience:
                continue
            before = held.levels[-self.patience - 1]
            stalled = held.level > (1 - self.min_improvement) * before
            gap = held.level / train.level
            onset = self._streak.update(held.name, gap > self.ratio and stalled, stream.step)
            if onset is not None:
                return self.finding(
                    stream,
                    held.name,
                    f"{held.name} is {gap:.1f}x {train.name} ({held.level:.4g} vs "
                    f"{train.level:.4g}) and has not improved for {self.patience} reports",
                    onset=onset,
                    held_out=held.level,
                    train=train.level,
                    train_metric=train.name,
                )
        return None
