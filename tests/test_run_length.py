"""A declared run length (budget.reports_per_run): where a run ends, and the progress shown."""

import io
import os
from pathlib import Path

from rich.console import Console

from rescue.cli.console import RescueConsole
from rescue.detectors.run_monitor import RunMonitor
from rescue.detectors.stream import MetricStream
from rescue.engine.record import RunRecord
from rescue.policy import load_policy


def test_a_watch_asks_to_stop_a_healthy_run_at_its_length():
    watch = RunMonitor(load_policy("default"), MetricStream(), Path(os.devnull), length=5)
    stops = [watch.on_report({"loss": 1.0 / (i + 1)}) for i in range(5)]
    watch.close()
    assert stops == [False, False, False, False, True]
    assert watch.verdict is None and watch.reached_length


def test_without_a_length_a_run_goes_on():
    watch = RunMonitor(load_policy("default"), MetricStream(), Path(os.devnull))
    assert not any(watch.on_report({"loss": 1.0 / (i + 1)}) for i in range(50))
    watch.close()


def test_the_live_line_shows_progress_toward_the_length():
    display = RescueConsole(console=Console(file=io.StringIO()), run_length=30)
    display.run_started(RunRecord(run=1, config={}), {})
    display.reported(14, {"loss": 0.5}, [])
    line = display._line().plain
    assert "run 1 · report 14/30" in line
    assert "██████████░░░░░░░░░░" in line  # 15 of 30 reports
