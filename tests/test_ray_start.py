"""Ray starts on a thread of its own while the supervisor opens its study: it must come up,
serve the whole rescue, and be stopped whatever happens before the first run."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import ray

from rescue.cli.main import main
from rescue.engine.ray_start import RayStart, ray_begun

SCRIPT = Path(__file__).parent / "scripts" / "sgd_regression.py"
GOOD = """\
params: {lr: 0.05, steps: 30}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.5}
"""


def _ray_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rescue-ray"]


def test_bad_input_starts_no_ray(tmp_path, capsys):
    assert not ray.is_initialized()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(GOOD)
    argv = [str(SCRIPT), "--config", str(cfg), "--out", str(tmp_path / "o"), "-q"]
    assert main([*argv, "--storage", "bogus://x"]) == 2
    assert "bogus://x" in capsys.readouterr().err
    assert not ray.is_initialized()
    assert _ray_threads() == []


def test_a_command_that_stops_before_its_first_run_stops_the_ray_begun_for_it():
    assert not ray.is_initialized()
    with pytest.raises(RuntimeError, match="before the first run"), ray_begun(None) as starting:
        assert starting.wait() and ray.is_initialized()  # up, and started here
        raise RuntimeError("before the first run")  # say, bad input found after it was begun
    assert not ray.is_initialized()
    assert _ray_threads() == []


def test_ray_outlives_the_start_and_serves_a_whole_rescue(monkeypatch):
    """Ray's processes die with the thread that started them; a rescue longer than the start
    must still find them (a thread that ended after ray.init lost Ray's GCS here)."""
    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # as in a fresh shell
    starting = RayStart(address=None).begin()
    try:
        assert starting.wait() is True
        time.sleep(1.0)
        assert ray.get(ray.remote(lambda: 41 + 1).remote(), timeout=60) == 42
    finally:
        starting.stop()
    assert not ray.is_initialized()
    assert _ray_threads() == []
    # A local Ray sets RAY_AUTH_MODE=token in this process; stopped, it leaves it as it was.
    assert "RAY_AUTH_MODE" not in os.environ
    starting.stop()  # once stopped, stopping again does nothing
