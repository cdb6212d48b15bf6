"""The population standard deviation in floats, for the per-report path: ``statistics.pstdev``
sums exactly, in fractions, which made it half of the detectors' cost per report."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pstdev(values: Sequence[float]) -> float:
    """Population standard deviation of ``values`` (at least one).

    >>> pstdev([1.0, 2.0, 3.0, 4.0])
    1.118033988749895
    >>> pstdev([0.3, 0.3, 0.3])
    0.0
    """
    if not values:
        raise ValueError("pstdev needs at least one value")
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
