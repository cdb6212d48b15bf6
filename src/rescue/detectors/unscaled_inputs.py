from __future__ import annotations

from rescue.detectors.above_threshold import AboveThreshold
from rescue.detectors.base import check_positive
from rescue.detectors.stream import Series
from rescue.kinds import Kind


class UnscaledInputs(AboveThreshold):
    """The network is fed raw, unscaled inputs: a normalisation problem, not a learning-rate
    one.

    ``input_absmax`` (the largest |x| entering the first layer, from ``rescue.watch``) stays
    above ``max_abs`` for ``patience`` reports; standardised inputs rarely exceed 5.

    >>> from rescue.detectors.base import replay
    >>> replay(UnscaledInputs(), [{"input_absmax": 255.0}] * 3)[0].reason
    'input_absmax is 255 for 3 reports: inputs far outside [-1, 1] are not normalised'
    """

    signature = "unscaled_inputs"
    kind = Kind.INPUT_SCALE

    def __init__(self, max_abs: float = 50.0, patience: int = 3) -> None:
        super().__init__(patience)
        self.threshold = check_positive("max_abs", max_abs)

    def reason(self, series: Series, reports: int) -> str:
        return (
            f"{series.name} is {series.level:.3g} for {reports} reports: inputs far outside "
            f"[-1, 1] are not normalised"
        )
