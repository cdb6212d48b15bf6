"""Bad input on the command line: one line on stderr, exit code 2, no traceback, nothing run
(every case fails before Ray starts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rescue.cli.main import main

SCRIPT = Path(__file__).parent / "scripts" / "sgd_regression.py"
GOOD = """\
params: {lr: 0.1, steps: 30}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
"""


def _bomb(levels: int = 9, width: int = 12) -> str:
    """A billion laughs in flow style: ``width ** levels`` leaves from a few hundred bytes."""
    text = "&l0 [x]"
    for level in range(1, levels + 1):
        text = f"&l{level} [{text}, " + ", ".join([f"*l{level - 1}"] * (width - 1)) + "]"
    return text


def _policy(tmp_path: Path, text: str) -> str:
    (tmp_path / "policy.yaml").write_text(text)
    return GOOD + f"policy: {tmp_path / 'policy.yaml'}\n"


CFGS = {
    "policy extends itself": (
        lambda t: _policy(t, f"extends: {t / 'policy.yaml'}\n"),
        "comes back to itself",
    ),
    "signatures as a list": (
        lambda t: _policy(t, "extends: default\nsignatures: [a, b]\n"),
        "signatures: expected a mapping",
    ),
    "signatures as a scalar": (
        lambda t: _policy(t, "extends: default\nsignatures: 3\n"),
        "signatures: expected a mapping",
    ),
    "a signature entry as a scalar": (
        lambda t: _policy(t, "extends: default\nsignatures:\n  divergence: 3\n"),
        "signatures.divergence: expected a mapping",
    ),
    "extends a number": (lambda t: _policy(t, "extends: 3\n"), "extends: expected"),
    "non-numeric detector parameter": (
        lambda t: _policy(
            t, "extends: default\nsignatures:\n  divergence:\n    params: {rise: x}\n"
        ),
        "`rise` must be",
    ),
    "infinite domain": (
        lambda t: (
            "params: {lr: 0.1}\nknobs:\n  lr: {role: learning_rate, low: -.inf, high: .inf}\n"
        ),
        "finite low and high",
    ),
    "alias bomb under params": (
        lambda t: GOOD.replace("steps: 30}", "steps: 30, bomb: " + _bomb() + "}"),
        "aliases expand it past",
    ),
    "recursive alias": (lambda t: GOOD + "ray: &r {x: *r}\n", "aliases expand it past"),
}


@pytest.mark.parametrize("case", list(CFGS))
def test_a_bad_cfg_or_policy_is_one_line_and_exit_2(tmp_path, capsys, case):
    make, message = CFGS[case]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(make(tmp_path))
    assert main([str(SCRIPT), "--config", str(cfg), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rescue: error: ") and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "kind, message",
    [
        ("folder", "it is a folder, not a file"),
        ("fifo", "not a regular file"),
        ("binary", "not UTF-8 text"),
        ("huge", "larger than"),
        ("missing", "expected an existing YAML file"),
    ],
)
def test_a_cfg_that_is_not_a_small_text_file_is_refused_unread(tmp_path, capsys, kind, message):
    cfg = tmp_path / "cfg.yaml"
    if kind == "folder":
        cfg.mkdir()
    elif kind == "fifo":
        os.mkfifo(cfg)  # reading it would block forever
    elif kind == "binary":
        cfg.write_bytes(b"params: \xff\xfe\x00")
    elif kind == "huge":
        cfg.write_text(GOOD + "# " + "x" * (1 << 20) + "\n")
    assert main([str(SCRIPT), "--config", str(cfg), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(cfg.name) in err and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "{tmp}/a-file"], "expected a folder rescue can create and write to"),
        (["--storage", "bogus://x"], "cannot open this Optuna storage"),
        (["--storage", "journal:{tmp}/missing/journal.log"], "cannot open this Optuna storage"),
    ],
)
def test_a_bad_output_folder_or_storage_is_one_line_and_leaves_no_study(
    tmp_path, capsys, extra, message
):
    (tmp_path / "a-file").write_text("not a folder")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(GOOD)
    argv = [str(SCRIPT), "--config", str(cfg), "-q"]
    extra = [e.format(tmp=tmp_path) for e in extra]
    if "--out" not in extra:
        extra += ["--out", str(tmp_path / "out")]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("rescue: error: ") and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.rglob("study.db"))


def test_an_unbalanced_command_line_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(GOOD)
    assert main(["--command", "python 'x", "--config", str(cfg), "-q"]) == 2
    err = capsys.readouterr().err
    assert "No closing quotation" in err and err.count("\n") == 1


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


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "report.json could not be read"),
        ('{"runs": 5, "config_file": "/dev/zero"}', "runs is a int, not a list"),
        ('{"runs": [5, {"run": "x"}]}', "run entry 1 could not be read"),
    ],
)
def test_rescue_report_on_a_malformed_report_json_is_one_line(tmp_path, capsys, text, message):
    (tmp_path / "report.json").write_text(text)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rescue: error: ") and message in err and err.count("\n") == 1, err


def test_an_address_where_no_cluster_answers_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(GOOD)
    argv = [str(SCRIPT), "--config", str(cfg), "--out", str(tmp_path / "out"), "-q"]
    assert main([*argv, "--address", "127.0.0.1:1"]) == 2  # a closed port: refused at once
    err = capsys.readouterr().err
    assert "--address 127.0.0.1:1: no Ray cluster answers there" in err and err.count("\n") == 1


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
