import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
