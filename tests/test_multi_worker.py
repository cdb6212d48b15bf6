"""Runs that are themselves distributed, supervised as one run: Ray Train's TorchTrainer (two
DDP workers, gloo on the CPU) inside train(config), and a plain DDP script under torchrun. Rank
0's reports are the run's; a stop ends every worker; the restart gets the remedy."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rescue.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.integration


def _rescue(args: list[str], out: Path) -> tuple[int, dict]:
    code = main([*args, "--out", str(out), "-q", "--no-page"])
    return code, json.loads((out / "report.json").read_text())


def _check_rescued(code: int, report: dict) -> None:
    assert code == 0 and report["outcome"] == "rescued", report["summary"]
    first, last = report["runs"][0], report["runs"][-1]
    assert first["status"] == "stopped"
    assert first["findings"][0]["signature"] in {"divergence", "explosion", "non_finite"}
    assert first["findings"][0]["metric"] == "loss"
    assert first["reports"] < 10 * 32  # stopped long before its 10 epochs of 32 steps
    assert last["status"] == "completed" and last["met_success"] and last["config"]["lr"] < 0.3
    assert last["reports"] == 10 * 32  # rank 0's reports only, once each


def _processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def test_a_diverging_ray_train_run_is_rescued_and_its_workers_end_with_it(local_ray, tmp_path):
    import ray

    example = EXAMPLES / "ray_train_divergence"
    code, report = _rescue(
        [str(example / "train.py"), "--config", str(example / "cfg.yaml")], tmp_path / "out"
    )
    _check_rescued(code, report)
    # The stopped runs' trainers and workers are gone, and every CPU is free again.
    deadline = time.monotonic() + 15
    while ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU") == 2
    assert _processes("RayTrainWorker") == []


def test_a_diverging_torchrun_script_is_rescued_and_its_process_tree_stopped(local_ray, tmp_path):
    example = EXAMPLES / "torchrun_divergence"
    command = f"torchrun --standalone --nproc_per_node 2 {example / 'train.py'}"
    code, report = _rescue(
        ["--command", command, "--config", str(example / "cfg.yaml")], tmp_path / "out"
    )
    _check_rescued(code, report)
    assert _processes("torchrun_divergence") == []  # the stopped run's workers did not outlive it
