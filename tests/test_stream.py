"""The metric stream's per-kind views, which detectors ask for at every report, follow the
series as they appear and as a loss turns out to go negative."""

from rescue.detectors.stream import MetricStream
from rescue.kinds import Kind, MetricKinds


def names(series):
    return [s.name for s in series]


def test_views_follow_new_series_and_a_loss_that_goes_negative():
    stream = MetricStream(MetricKinds({"acc": "score", "surrogate": "loss"}))
    stream.append({"loss": 1.0, "surrogate": 0.5})
    assert names(stream.losses()) == ["loss", "surrogate"]
    assert names(stream.of_kind(Kind.SCORE)) == []
    stream.append({"loss": 0.9, "surrogate": 0.4, "acc": 0.3})  # a metric first seen later
    assert names(stream.of_kind(Kind.SCORE)) == ["acc"]
    assert names(stream.of_kind(Kind.LOSS, Kind.SCORE)) == ["loss", "surrogate", "acc"]
    stream.append({"loss": 0.8, "surrogate": -0.1})  # not a proper loss after all
    assert names(stream.losses()) == ["loss"]
    assert names(stream.of_kind(Kind.LOSS)) == ["loss", "surrogate"]
    stream.append({"loss": float("-inf"), "surrogate": 0.2})  # not finite: not "negative"
    assert names(stream.losses()) == ["loss"]
    assert not stream.series["loss"].ever_negative
