import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# rescue's fingerprints of what was started (rescue.engine.trust) go here, not to the user's home;
# set before the test modules build the environments of their subprocesses.
os.environ.setdefault("RESCUE_STATE_DIR", tempfile.mkdtemp(prefix="rescue-state-"))


@pytest.fixture
def write_cfg(tmp_path):
    """Write a cfg.yaml with the given text and return its path."""

    def write(text: str, name: str = "cfg.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for a module; the CLI attaches to it instead of starting its own."""
    import ray

    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on loopback, for the Optuna RDB storage; skipped where
    the server or the driver is not installed."""
    import shutil
    import socket
    import subprocess
    import tempfile

    pytest.importorskip("psycopg2", reason="the PostgreSQL driver (pip install psycopg2-binary)")
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip("no PostgreSQL server (apt-get install postgresql)")
    # Not under pytest's folder, which only its owner may enter: the server may run as another.
    folder = Path(tempfile.mkdtemp(prefix="rescue-postgres-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run the server as")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    run = dict(check=True, capture_output=True)
    subprocess.run([*as_owner, "initdb", "-D", str(data), "-A", "trust", "-U", "rescue"], **run)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    pg_ctl = [*as_owner, "pg_ctl", "-D", str(data), "-l", str(folder / "log")]
    subprocess.run([*pg_ctl, "-o", options, "-w", "start"], **run)
    try:
        yield f"postgresql+psycopg2://rescue@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
