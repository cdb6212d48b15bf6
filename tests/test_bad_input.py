"""Bad input beyond the battery (tests/test_bad_input_battery.py): alias bombs, a folder in
use, a device as cfg, JSON numbers past any float, the cfg read once."""

from __future__ import annotations

import os
from pathlib import Path

from rescue.cli.main import main

SCRIPT = Path(__file__).parent / "scripts" / "sgd_regression.py"
GOOD = """\
params: {lr: 0.1, steps: 30}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
"""


def test_rescue_report_on_a_cfg_that_is_a_device_draws_the_page_without_targets(tmp_path):
    from rescue.page.data import _read_cfg

    notes: list[str] = []
    assert _read_cfg("/dev/zero", notes) == ([], {}, [])  # returns at once: never read
    assert "could not be read" in notes[0]


def test_a_folder_in_use_or_already_holding_a_rescue_is_refused(tmp_path, capsys):
    from rescue.engine.folder_lock import lock_folder, release_folders

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(GOOD)
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(SCRIPT), "--config", str(cfg), "--out", str(out), "-q"]
    lock_folder(out)  # as a rescue running on it holds it
    try:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"in use by rescue pid {os.getpid()}" in err and "rescue resume" in err
    finally:
        release_folders()
    (out / "report.json").write_text("{}")  # a rescue that ran here before
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds a rescue or sweep" in err and f"rescue resume {out}" in err
    assert not (out / "study.db").exists()


def test_a_json_number_beyond_any_float_in_a_plain_scripts_output_is_left_out():
    from rescue.worker.output_metrics import OutputParser

    parser = OutputParser()
    assert parser.parse('{"loss": 0.5, "big": ' + "9" * 400 + ', "inf": 1e999}') == {
        "loss": 0.5,
        "inf": float("inf"),
    }
    assert list(parser.unreadable) == ["big"]


def test_the_cfg_is_read_once(tmp_path, monkeypatch):
    import rescue.config
    from rescue.cli.startup import read_cfg

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(GOOD)
    reads = []
    real = rescue.config.load_yaml
    monkeypatch.setattr(rescue.config, "load_yaml", lambda p: reads.append(p) or real(p))
    config, _ = read_cfg(cfg)
    assert reads == [cfg] and config.params["lr"] == 0.1
