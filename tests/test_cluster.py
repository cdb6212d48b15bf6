"""A real multi-node Ray cluster on this machine: a head and a worker node started with
`ray start`, as on a cluster; rescue and a sweep attach to it with --address."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray

from cli_runs import DIVERGING, SCRIPTS
from rescue.cli.main import main

pytestmark = pytest.mark.integration
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _ray_node(*args: str) -> subprocess.Popen:
    # --block keeps the node in the foreground, so the test stops exactly what it started.
    return subprocess.Popen(
        [RAY, "start", "--block", "--num-cpus=1", "--disable-usage-stats", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@dataclass
class Cluster:
    address: str  # what --address takes
    jobs: str  # the Jobs API (dashboard) URL


@pytest.fixture(scope="module")
def cluster():
    # Loopback only: this test cluster runs without Ray's token authentication.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    if ray.is_initialized():
        ray.shutdown()
    temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # Ray's socket paths must be short
    port = _free_port()
    address = f"{ray.util.get_node_ip_address()}:{port}"
    dashboard = _free_port()
    head = ["--head", f"--port={port}", f"--temp-dir={temp_dir}"]
    # The dashboard serves the Ray Jobs API (`ray job submit`).
    nodes = [_ray_node(*head, "--include-dashboard=true", f"--dashboard-port={dashboard}")]
    try:
        time.sleep(5)
        nodes.append(_ray_node(f"--address={address}"))
        deadline = time.monotonic() + 60
        while True:
            ray.init(address=address, log_to_driver=False)
            alive = [n for n in ray.nodes() if n["Alive"]]
            ray.shutdown()
            if len(alive) == 2:
                break
            assert time.monotonic() < deadline, f"the worker node did not join ({len(alive)})"
            time.sleep(2)
        yield Cluster(address, f"http://127.0.0.1:{dashboard}")
    finally:
        for node in reversed(nodes):
            _stop(node)


def _stop(node: subprocess.Popen) -> None:
    # The node's Ray processes share its process group: they go with it.
    os.killpg(node.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(timeout=3)  # `ray start --block` often outwaits a SIGTERM: no use waiting
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=15)


def test_a_rescue_runs_on_an_existing_two_node_cluster(cluster, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(DIVERGING)
    out = tmp_path / "out"
    argv = [str(SCRIPTS / "sgd_regression.py"), "-c", str(cfg), "--out", str(out)]
    code = main([*argv, "--address", cluster.address, "-q"])
    report = json.loads((out / "report.json").read_text())
    assert code == 0 and report["outcome"] == "rescued"
    assert report["runs"][0]["status"] == "stopped"
    assert report["runs"][-1]["final_metrics"]["loss"] < 0.05
    assert not ray.is_initialized()  # detached from the cluster, which keeps running


def test_a_sweep_places_its_trials_on_the_cluster(cluster, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(DIVERGING.replace("budget: {restarts: 3}\n", ""))
    out = tmp_path / "out"
    argv = [str(SCRIPTS / "sgd_regression.py"), "-c", str(cfg), "--out", str(out)]
    code = main(
        ["sweep", *argv, "--trials", "4", "--parallel", "2"] + ["--address", cluster.address, "-q"]
    )
    report = json.loads((out / "report.json").read_text())
    assert len(report["trials"]) == 4
    assert code == 0
    # Both nodes still alive and the cluster still reachable after the sweep detached.
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        assert sum(n["Alive"] for n in ray.nodes()) == 2
    finally:
        ray.shutdown()


def test_the_slurm_script_is_valid_bash_and_exits_with_rescues_code():
    script = Path(__file__).resolve().parents[1] / "examples" / "cluster" / "slurm_rescue.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "--address" in text and 'exit "$code"' in text


def _submit(cluster: Cluster, cfg: Path, out: Path) -> subprocess.CompletedProcess:
    rescue = str(Path(sys.executable).with_name("rescue"))
    command = [rescue, str(SCRIPTS / "sgd_regression.py"), "-c", str(cfg), "--out", str(out)]
    return subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            cluster.jobs,
            "--",
            *command,
            "--address",
            "auto",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_rescue_submitted_as_a_ray_job_succeeds_or_fails_with_its_verdict(cluster, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(DIVERGING)
    done = _submit(cluster, cfg, tmp_path / "rescued")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "rescued" / "report.json").read_text())["outcome"] == "rescued"

    cfg.write_text(DIVERGING.replace("restarts: 3", "restarts: 0"))  # nothing left to try
    failed = _submit(cluster, cfg, tmp_path / "failed")
    assert failed.returncode != 0
    assert "exit code 3" in failed.stdout + failed.stderr
    assert "not_rescued: the budget of 0 restarts is spent" in failed.stdout + failed.stderr
