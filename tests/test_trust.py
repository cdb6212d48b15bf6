"""`rescue resume` runs nothing an output folder names unless this account started it, the
user names it again, or says --trust-outdir; checkpoints load as weights only, from inside
the folder or the configured storage. No Ray: every refusal comes before Ray starts."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import torch

from rescue.cli.main import main
from rescue.cli.startup import check_resumable
from rescue.engine.record import RescueReport, RunRecord
from rescue.engine.resume import Progress, resume_entry
from rescue.engine.trust import Launch, check_checkpoints, remember
from rescue.errors import RescueError
from rescue.layout import CHECKPOINT as CHECKPOINT_FILE
from rescue.search.study import default_storage
from rescue.worker.command_line import CommandSpec
from rescue.worker.tune_sink import load_checkpoint

SCRIPT = Path(__file__).parent / "scripts" / "sgd_regression.py"
CFG = """\
params: {lr: 0.9, steps: 300, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
"""


class Payload:
    """A pickle that runs a command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _folder(out: Path, command: CommandSpec | None = None, resume_from: str | None = None):
    """A rescue's folder between runs: run 0 stopped, run 1 about to start."""
    out.mkdir(parents=True)
    (out / "cfg.yaml").write_text(CFG)
    report = RescueReport(
        script=str(SCRIPT),
        config_file=str(out / "cfg.yaml"),
        out=str(out),
        storage=default_storage(out),
        study="rescue-out",
    )
    report.runs.append(RunRecord(run=0, config={"lr": 0.9}, status="stopped", reports=3))
    pending = Progress(next_run=1, config={"lr": 0.05}, search={}, resume_from=resume_from)
    report.resume = resume_entry(pending, "" if command else "train", command, 0, None)
    report.write(out / "report.json")
    return Launch.of(
        out,
        str(SCRIPT),
        "" if command else "train",
        command.to_dict() if command else None,
        str(out / "cfg.yaml"),
        default_storage(out),
        None,
    )


def test_a_command_written_into_report_json_is_not_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    out = tmp_path / "out"
    _folder(out, CommandSpec(("sh", "-c", f"touch {marker}")))
    assert main(["resume", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "you did not start from this account" in err and "--trust-outdir" in err
    assert not marker.exists()


def test_naming_other_files_than_the_folder_was_started_with_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    _folder(out)
    other = tmp_path / "other.yaml"
    other.write_text(CFG)
    assert main(["resume", str(out), str(SCRIPT), "--config", str(other), "-q"]) == 2
    err = capsys.readouterr().err
    assert "config_file:" in err and "other.yaml' given" in err


def _args(out: Path, **given) -> argparse.Namespace:
    values = dict(out=out, script=None, config=None, command=None, entry=None, storage=None)
    values.update(address=None, trust_outdir=False, quiet=True)
    return argparse.Namespace(**{**values, **given})


def test_the_folder_may_run_what_the_user_names_again_or_started_or_trusts(tmp_path):
    out = tmp_path / "out"
    recorded = _folder(out)
    with pytest.raises(RescueError, match="did not start from this account"):
        check_resumable(_args(out), recorded, out)
    check_resumable(_args(out, script=SCRIPT, config=out / "cfg.yaml"), recorded, out)
    check_resumable(_args(out, trust_outdir=True), recorded, out)
    remember(recorded)  # as `rescue train.py --config cfg.yaml --out out` does at its start
    check_resumable(_args(out), recorded, out)
    # A Ray address the folder names must be named too; one named now is the user's choice.
    elsewhere = Launch.of(
        out,
        str(SCRIPT),
        "train",
        None,
        str(out / "cfg.yaml"),
        default_storage(out),
        "10.0.0.9:6379",
    )
    with pytest.raises(RescueError, match="address"):
        check_resumable(_args(out, script=SCRIPT, config=out / "cfg.yaml"), elsewhere, out)
    named = _args(out, script=SCRIPT, config=out / "cfg.yaml", address="10.0.0.9:6379")
    check_resumable(named, elsewhere, out)


def test_a_checkpoint_outside_the_folder_is_refused_before_anything_loads_it(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil"
    evil.mkdir()
    torch.save({"x": Payload(marker)}, evil / CHECKPOINT_FILE)
    out = tmp_path / "out"
    remember(_folder(out, resume_from=str(evil)))  # this account's own folder, edited since
    assert main(["resume", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"names the checkpoint '{evil}'" in err and "outside the folder" in err
    assert not marker.exists()


def test_checkpoints_load_as_weights_only_unless_asked(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"x": Payload(marker), "w": torch.ones(2)}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_checkpoint(tmp_path)
    assert not marker.exists()
    torch.save({"w": torch.ones(2), "epoch": 3, "rng": torch.get_rng_state()}, tmp_path / "x")
    (tmp_path / "x").replace(tmp_path / CHECKPOINT_FILE)
    assert load_checkpoint(tmp_path)["epoch"] == 3  # state dicts, numbers, tensors: fine


@pytest.mark.parametrize(
    "path, storage, allowed",
    [
        ("{out}/ray/run-000/checkpoint_000001", None, True),
        ("file://{out}/ray/run-000/checkpoint_000001", None, True),
        ("{out}/../elsewhere/checkpoint_000001", None, False),
        ("/tmp/checkpoint_000001", None, False),
        ("file:///data/store/run-000/checkpoint_000001", "file:///data/store", True),
        ("/data/store/run-000/checkpoint_000001", "/data/store", True),
        ("s3://bucket/runs/run-000/checkpoint_000001", "s3://bucket/runs", True),
        ("s3://bucket/other/checkpoint_000001", "s3://bucket/runs", False),
        ("s3://bucket/runs-evil/checkpoint_000001", "s3://bucket/runs", False),
    ],
)
def test_checkpoints_must_lie_in_the_folder_or_the_configured_storage(
    tmp_path, path, storage, allowed
):
    out = tmp_path / "out"
    paths = [path.format(out=out)]
    if allowed:
        check_checkpoints(out, paths, storage, trust_outdir=False)
    else:
        with pytest.raises(RescueError, match="outside the folder"):
            check_checkpoints(out, paths, storage, trust_outdir=False)
        check_checkpoints(out, paths, storage, trust_outdir=True)


def test_a_start_leaves_a_fingerprint_of_what_it_runs_outside_the_folder(tmp_path):
    out = tmp_path / "out"
    recorded = _folder(out)
    state = Path(os.environ["RESCUE_STATE_DIR"]) / "launches"
    remember(recorded)
    assert (state / recorded.fingerprint()).is_file()
    assert not str(state).startswith(str(out))
    data = json.loads((out / "report.json").read_text())
    assert data["resume"]["entry"] == "train"
