"""Every kind of bad cfg.yaml is refused before anything runs, naming file, key and expectation."""

import pytest

from rescue.cli.main import main
from rescue.config import load_config
from rescue.errors import ConfigError

GOOD = """\
params: {lr: 0.01, steps: 600, init: default, every: 10}
knobs:
  lr: {role: learning_rate, low: 1e-6, high: 1.0, log: true}
  init: {role: init, choices: [zeros, default, kaiming]}
  every: {role: resample_every, low: 1, high: 100}
metrics:
  pred_usage: {kind: class_usage}
success:
  val_loss: {below: 0.05}
  val_acc: {above: 0.9}
budget: {restarts: 5, seconds: 600}
policy: default
ray: {address: null, cpus_per_run: 1, gpus_per_run: 0}
"""


def test_a_full_config_loads(write_cfg):
    cfg = load_config(write_cfg(GOOD))
    assert cfg.knobs["lr"].low == 1e-6  # YAML 1.2 numbers: 1e-6 is a float
    assert cfg.success["val_acc"].above == 0.9
    assert cfg.metric_kinds == {"pred_usage": "class_usage"}
    assert cfg.budget.restarts == 5


@pytest.mark.parametrize(
    "change, key, expected",
    [
        (("budget: {restarts: 5, seconds: 600}", "budgit: {restarts: 5}"), "budgit", "unknown key"),
        (("log: true}", "log: true, step: 2}"), "knobs.lr.step", "unknown key"),
        (("role: learning_rate", "role: lr"), "knobs.lr.role", "one of"),
        (("low: 1e-6, high: 1.0", "low: 1.0, high: 1e-6"), "knobs.lr", "low < high"),
        (("low: 1e-6, high: 1.0", "low: 1e-6"), "knobs.lr", "both low and high"),
        (("choices: [zeros, default, kaiming]", "low: 0, high: 1"), "params.init", "a number"),
        (("lr: 0.01, steps", "lr: 5.0, steps"), "params.lr", "[1e-06, 1]"),
        (("init: default, every", "init: orthogonal, every"), "params.init", "one of"),
        (("  every: {role", "  missing: {role"), "knobs.missing", "a key of params"),
        (("kind: class_usage", "kind: usage"), "metrics.pred_usage.kind", "'loss'"),
        (("{below: 0.05}", "{below: 0.05, above: 0.01}"), "success.val_loss", "exactly one"),
        (("restarts: 5,", "restarts: -1,"), "budget.restarts", "greater than or equal"),
        (("cpus_per_run: 1", "cpus_per_run: two"), "ray.cpus_per_run", "number"),
        (("params: {lr", "parameters: {lr"), "parameters", "unknown key"),
    ],
)
def test_bad_input_names_file_key_and_expectation(write_cfg, change, key, expected):
    old, new = change
    assert old in GOOD
    path = write_cfg(GOOD.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected"), message
    assert expected in message


def test_missing_required_sections(write_cfg):
    with pytest.raises(ConfigError, match="params: expected this required key"):
        load_config(write_cfg("knobs: {}\n"))
    with pytest.raises(ConfigError, match="a mapping"):
        load_config(write_cfg("- just a list\n"))
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(write_cfg("params: {lr: [\n"))


def test_cli_exits_2_before_running(write_cfg, tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text("def train(config):\n    raise SystemExit('must not run')\n")
    bad = write_cfg(GOOD.replace("role: learning_rate", "role: speed"))
    assert main([str(script), "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "knobs.lr.role: expected one of" in err and str(bad) in err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_a_script_without_the_entry_it_was_told_to_call(write_cfg, tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text("def fit(config):\n    pass\n")
    good = write_cfg(GOOD)
    assert main([str(script), "--config", str(good), "--entry", "nope"]) == 2
    assert "expected a function nope(config)" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.py"), "--config", str(good)]) == 2
    assert "expected an existing training script" in capsys.readouterr().err


def test_cli_refuses_bad_command_settings_naming_the_key(write_cfg, capsys):
    bad_group = write_cfg(GOOD + "command:\n  metrics: {loss: 'Loss: [0-9.]+'}\n")
    assert main(["x.py", "--config", str(bad_group)]) == 2
    err = capsys.readouterr().err
    assert "command.metrics.loss" in err and "exactly one capture group" in err
    bad_name = write_cfg(GOOD + "command:\n  args: ['--learning-rate', '{learning_rate}']\n")
    assert main(["x.py", "--config", str(bad_name)]) == 2
    assert "command.args" in capsys.readouterr().err


def test_cli_refuses_an_unknown_policy(write_cfg, tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text("def train(config):\n    pass\n")
    cfg = write_cfg(GOOD.replace("policy: default", "policy: nonexistent"))
    assert main([str(script), "--config", str(cfg)]) == 2
    assert "policy 'nonexistent': expected a policy name (default)" in capsys.readouterr().err


def test_the_user_api_is_not_shadowed_by_submodules():
    import rescue
    import rescue.cli.main  # noqa: F401
    import rescue.engine.supervisor  # noqa: F401  (imports every module the supervisor uses)

    assert callable(rescue.report) and callable(rescue.get_checkpoint)
