from __future__ import annotations

from rescue.detectors.base import (
    Detector,
    Streak,
    check_count,
    check_fraction,
    check_positive,
    pct,
)
from rescue.detectors.findings import Finding
from rescue.detectors.stream import MetricStream, Series

TREND_WINDOW = 20


def upward_trend(values: list[float]) -> float:
    """Kendall's tau against time, in [-1, 1]: 1 when every later value is higher."""
    pairs = concordant = 0
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            if a != b:
                pairs += 1
                concordant += b > a
    return (2 * concordant - pairs) / pairs if pairs else 0.0


class Divergence(Detector):
    """A loss climbs well above its best and keeps climbing.

    The loss *level* (median of the last three reports) must stand ``rise`` above its best level,
    and the reports since the best must trend upward (Kendall's tau at least ``trend``, so
    mini-batch noise around a flat curve is not a climb), for ``patience`` reports in a row,
    each at or above the level where the climb began (a spike that recovers resets it). The
    climb must also be a real share (``min_climb``) of the progress made since the start, so a
    loss that legitimately went to ~0 does not alarm on noise.

    A loss that rises while another loss holds near its best, or while a score is near its
    best (``other_holding``), is not the whole training diverging: one head not learning is
    ``opposing_losses``, a held-out loss rising is ``generalization_gap``, and an RL value loss
    grows legitimately as returns grow.

    >>> from rescue.detectors.base import replay
    >>> seed_002 = [0.2847, 0.4057, 0.4231, 0.4405, 0.458]  # five epochs at lr 0.001
    >>> replay(Divergence(), [{"loss": v} for v in seed_002])[0].reason
    'loss rose +49% above its best (0.2847 -> 0.4231) over 2 reports'
    """

    signature = "divergence"

    def __init__(
        self,
        rise: float = 0.3,
        min_climb: float = 0.25,
        patience: int = 2,
        trend: float = 0.6,
        other_holding: float = 0.1,
    ) -> None:
        self.rise = check_positive("rise", rise)
        self.min_climb = check_fraction("min_climb", min_climb)
        self.trend = check_fraction("trend", trend)
        self.other_holding = check_fraction("other_holding", other_holding)
        self._streak = Streak(check_count("patience", patience))
        self._onset_level: dict[str, float] = {}

    def on_report(self, stream: MetricStream) -> Finding | None:
        losses = list(stream.losses())
        for series in losses:
            if not stream.observed(series):
                continue
            best, level = series.min_level, series.level
            climb = level - best
            climbing = (
                series.count >= 3
                and climb > self.rise * abs(best)
                and climb > self.min_climb * max(series.first_level - best, 0.0)
                and series.last >= self._onset_level.get(series.name, level)
                and self._trending_up(stream, series)
                and not self._something_else_holding(stream, losses, series.name)
            )
            if climbing:
                self._onset_level.setdefault(series.name, level)
            else:
                self._onset_level.pop(series.name, None)
            onset = self._streak.update(series.name, climbing, stream.step)
            if onset is not None:
                return self.finding(
                    stream,
                    series.name,
                    f"{series.name} rose {pct(level / best)} above its best "
                    f"({best:.4g} -> {level:.4g}) over {self._streak.length(series.name)} "
                    "reports",
                    onset=onset,
                    best=best,
                    best_step=series.min_level_step,
                    level=level,
                )
        return None

    def _trending_up(self, stream: MetricStream, series: Series) -> bool:
        since_best = series.count - series.min_level_index + 1  # with the report at the best
        values = series.window(min(TREND_WINDOW, max(since_best, 3)))
        return upward_trend(values) >= self.trend

    def _something_else_holding(
        self, stream: MetricStream, losses: list[Series], name: str
    ) -> bool:
        for other in losses:
            if (
                other.name != name
                and other.count >= 3
                and other.level <= (1 + self.other_holding) * other.min_level
            ):
                return True
        return stream.score_near_best(self.other_holding) is not None
