"""Healthy runs must not be stopped: no restart-worthy finding on any curve of the corpus,
for several seeds each."""

import pytest

import healthy_runs
from rescue.detectors.run_monitor import replay_run
from rescue.policy import load_policy


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(healthy_runs.CORPUS))
def test_no_restart_on_a_healthy_run(name, seed, tmp_path):
    reports = healthy_runs.CORPUS[name](seed)
    watch = replay_run(load_policy("default"), reports)
    restarts = [f for f in watch.findings if f.action == "restart"]
    assert restarts == [], f"{name} seed {seed}: {[f.reason for f in restarts]}"
