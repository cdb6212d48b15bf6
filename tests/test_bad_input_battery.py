"""The bad-input battery: over a hundred wrong cfgs, policies, scripts, folders and flags, each
refused with exit code 2 and one line on stderr that names the file and the key (for a cfg or
policy) or the argument, with no traceback, no hang and nothing started (every case fails
before Ray starts, so the whole battery runs in seconds).

Each case is ``(id, cfg text or None, argv, expected)``: the cfg text is written to
``{tmp}/cfg.yaml``; ``argv`` and ``expected`` may name ``{tmp}``, ``{cfg}`` and ``{script}``;
every string in ``expected`` must appear in the error line.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rescue.cli.main import main

SCRIPT = Path(__file__).parent / "scripts" / "sgd_regression.py"
GOOD = """\
params: {lr: 0.1, steps: 30, init: default, every: 10}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
  init: {role: init, choices: [zeros, default]}
success:
  loss: {below: 0.05}
"""
RUN = ["{script}", "--config", "{cfg}", "--out", "{tmp}/out", "-q"]
SWEEP = ["sweep", "{script}", "--config", "{cfg}", "--out", "{tmp}/out", "-q"]


def cfg(old: str, new: str) -> str:
    """GOOD with one change (which must apply)."""
    assert old in GOOD, old
    return GOOD.replace(old, new)


def plus(text: str) -> str:
    return GOOD + text


def policy(text: str) -> str:
    """GOOD pointing at ``{tmp}/policy.yaml``, which holds ``text``."""
    return GOOD + "policy: {tmp}/policy.yaml\n#POLICY\n" + text


def bomb(levels: int = 9, width: int = 12) -> str:
    """A billion laughs in flow style: ``width ** levels`` leaves from a few hundred bytes."""
    text = "&l0 [x]"
    for level in range(1, levels + 1):
        text = f"&l{level} [{text}, " + ", ".join([f"*l{level - 1}"] * (width - 1)) + "]"
    return text


def knob(text: str) -> str:
    return cfg("  init: {role: init, choices: [zeros, default]}", "  init: " + text)


CASES: list[tuple[str, str | None, list[str], list[str]]] = [
    # --- the cfg's sections: unknown keys and wrong types -----------------------------------
    (
        "unknown top-level key",
        plus("budgit: {restarts: 2}\n"),
        RUN,
        ["{cfg}", "budgit", "unknown key"],
    ),
    ("misspelt params", cfg("params:", "parameters:"), RUN, ["{cfg}", "parameters"]),
    ("no params", "knobs: {}\n", RUN, ["{cfg}", "params", "required"]),
    ("no knobs", "params: {lr: 0.1}\n", RUN, ["{cfg}", "knobs", "required"]),
    (
        "params a list",
        cfg("params: {lr: 0.1, steps: 30, init: default, every: 10}", "params: [1, 2]"),
        RUN,
        ["{cfg}", "params", "dictionary"],
    ),
    (
        "params a number",
        cfg("params: {lr: 0.1, steps: 30, init: default, every: 10}", "params: 3"),
        RUN,
        ["{cfg}", "params"],
    ),
    ("knobs a list", "params: {lr: 0.1}\nknobs: [lr]\n", RUN, ["{cfg}", "knobs"]),
    ("knobs a string", "params: {lr: 0.1}\nknobs: lr\n", RUN, ["{cfg}", "knobs"]),
    ("success a list", cfg("  loss: {below: 0.05}\n", "  - loss\n"), RUN, ["{cfg}", "success"]),
    ("metrics a list", plus("metrics: [loss]\n"), RUN, ["{cfg}", "metrics"]),
    ("budget a list", plus("budget: [1]\n"), RUN, ["{cfg}", "budget"]),
    ("budget a number", plus("budget: 5\n"), RUN, ["{cfg}", "budget"]),
    ("ray a list", plus("ray: [1]\n"), RUN, ["{cfg}", "ray"]),
    ("command a string", plus("command: python x.py\n"), RUN, ["{cfg}", "command"]),
    ("search a list", plus("search: [wd]\n"), RUN, ["{cfg}", "search"]),
    ("policy a list", plus("policy: [default]\n"), RUN, ["{cfg}", "policy"]),
    ("policy a mapping", plus("policy: {extends: default}\n"), RUN, ["{cfg}", "policy"]),
    ("top level a list", "- params\n- knobs\n", RUN, ["{cfg}", "a mapping"]),
    ("top level a number", "42\n", RUN, ["{cfg}", "a mapping"]),
    ("empty file", "", RUN, ["{cfg}", "a mapping"]),
    ("only a comment", "# nothing here\n", RUN, ["{cfg}", "a mapping"]),
    ("top level a string", "just words\n", RUN, ["{cfg}", "a mapping"]),
    # --- knobs ------------------------------------------------------------------------------
    (
        "knob role missing",
        knob("{choices: [zeros, default]}"),
        RUN,
        ["{cfg}", "knobs.init.role", "required"],
    ),
    (
        "knob role unknown",
        knob("{role: speed, choices: [zeros, default]}"),
        RUN,
        ["{cfg}", "knobs.init.role", "one of"],
    ),
    (
        "knob role a number",
        knob("{role: 3, choices: [zeros, default]}"),
        RUN,
        ["{cfg}", "knobs.init.role"],
    ),
    (
        "knob unknown key",
        knob("{role: init, choices: [zeros, default], step: 2}"),
        RUN,
        ["{cfg}", "knobs.init.step", "unknown key"],
    ),
    ("knob a scalar", knob("zeros"), RUN, ["{cfg}", "knobs.init"]),
    ("knob a list", knob("[zeros, default]"), RUN, ["{cfg}", "knobs.init"]),
    ("knob without a domain", knob("{role: init}"), RUN, ["{cfg}", "knobs.init", "a domain"]),
    (
        "knob range and choices",
        knob("{role: init, choices: [a, b], low: 0, high: 1}"),
        RUN,
        ["{cfg}", "knobs.init", "not both"],
    ),
    (
        "knob one choice",
        knob("{role: init, choices: [default]}"),
        RUN,
        ["{cfg}", "knobs.init", "at least two"],
    ),
    (
        "knob no choices",
        knob("{role: init, choices: []}"),
        RUN,
        ["{cfg}", "knobs.init", "at least two"],
    ),
    (
        "knob choices a string",
        knob("{role: init, choices: zeros}"),
        RUN,
        ["{cfg}", "knobs.init.choices"],
    ),
    (
        "param outside choices",
        cfg("init: default,", "init: orthogonal,"),
        RUN,
        ["{cfg}", "params.init", "one of"],
    ),
    (
        "low only",
        cfg("low: 1.0e-5, high: 1.0", "low: 1.0e-5"),
        RUN,
        ["{cfg}", "knobs.lr", "both low and high"],
    ),
    (
        "high only",
        cfg("low: 1.0e-5, high: 1.0", "high: 1.0"),
        RUN,
        ["{cfg}", "knobs.lr", "both low and high"],
    ),
    (
        "low above high",
        cfg("low: 1.0e-5, high: 1.0", "low: 1.0, high: 1.0e-5"),
        RUN,
        ["{cfg}", "knobs.lr", "low < high"],
    ),
    (
        "low equal to high",
        cfg("low: 1.0e-5, high: 1.0", "low: 0.1, high: 0.1"),
        RUN,
        ["{cfg}", "knobs.lr", "low < high"],
    ),
    ("log with low zero", cfg("low: 1.0e-5", "low: 0"), RUN, ["{cfg}", "knobs.lr", "low > 0"]),
    ("log with low negative", cfg("low: 1.0e-5", "low: -1"), RUN, ["{cfg}", "knobs.lr", "low > 0"]),
    ("low a word", cfg("low: 1.0e-5", "low: tiny"), RUN, ["{cfg}", "knobs.lr.low", "number"]),
    ("high a list", cfg("high: 1.0", "high: [1]"), RUN, ["{cfg}", "knobs.lr.high", "number"]),
    ("low not a number", cfg("low: 1.0e-5", "low: .nan"), RUN, ["{cfg}", "knobs.lr", "finite"]),
    (
        "infinite range",
        cfg("low: 1.0e-5, high: 1.0, log: true", "low: -.inf, high: .inf"),
        RUN,
        ["{cfg}", "knobs.lr", "finite"],
    ),
    ("log a word", cfg("log: true", "log: often"), RUN, ["{cfg}", "knobs.lr.log", "boolean"]),
    (
        "knob not in params",
        cfg("  lr: {role", "  rate: {role"),
        RUN,
        ["{cfg}", "knobs.rate", "a key of params"],
    ),
    ("param outside range", cfg("lr: 0.1,", "lr: 5.0,"), RUN, ["{cfg}", "params.lr"]),
    (
        "param a word for a range",
        cfg("lr: 0.1,", "lr: fast,"),
        RUN,
        ["{cfg}", "params.lr", "a number"],
    ),
    (
        "param a list for a range",
        cfg("lr: 0.1,", "lr: [0.1],"),
        RUN,
        ["{cfg}", "params.lr", "a number"],
    ),
    ("param null for a range", cfg("lr: 0.1,", "lr: null,"), RUN, ["{cfg}", "params.lr"]),
    # --- metrics and success ----------------------------------------------------------------
    (
        "metric kind unknown",
        plus("metrics:\n  usage: {kind: shares}\n"),
        RUN,
        ["{cfg}", "metrics.usage.kind"],
    ),
    (
        "metric kind missing",
        plus("metrics:\n  usage: {}\n"),
        RUN,
        ["{cfg}", "metrics.usage.kind", "required"],
    ),
    (
        "metric spec a scalar",
        plus("metrics:\n  usage: class_usage\n"),
        RUN,
        ["{cfg}", "metrics.usage"],
    ),
    (
        "metric spec unknown key",
        plus("metrics:\n  usage: {kind: class_usage, colour: red}\n"),
        RUN,
        ["{cfg}", "metrics.usage.colour", "unknown key"],
    ),
    (
        "target both ways",
        cfg("{below: 0.05}", "{below: 0.05, above: 0.01}"),
        RUN,
        ["{cfg}", "success.loss", "exactly one"],
    ),
    (
        "target neither way",
        cfg("{below: 0.05}", "{}"),
        RUN,
        ["{cfg}", "success.loss", "exactly one"],
    ),
    (
        "target a word",
        cfg("{below: 0.05}", "{below: low}"),
        RUN,
        ["{cfg}", "success.loss.below", "number"],
    ),
    ("target a scalar", cfg("{below: 0.05}", "0.05"), RUN, ["{cfg}", "success.loss"]),
    (
        "target unknown key",
        cfg("{below: 0.05}", "{under: 0.05}"),
        RUN,
        ["{cfg}", "success.loss.under", "unknown key"],
    ),
    (
        "target not a number",
        cfg("{below: 0.05}", "{below: .nan}"),
        RUN,
        ["{cfg}", "success.loss", "finite"],
    ),
    # --- budget and ray ---------------------------------------------------------------------
    (
        "restarts negative",
        plus("budget: {restarts: -1}\n"),
        RUN,
        ["{cfg}", "budget.restarts", "greater than or equal"],
    ),
    (
        "restarts a fraction",
        plus("budget: {restarts: 1.5}\n"),
        RUN,
        ["{cfg}", "budget.restarts", "integer"],
    ),
    (
        "restarts a word",
        plus("budget: {restarts: many}\n"),
        RUN,
        ["{cfg}", "budget.restarts", "integer"],
    ),
    (
        "seconds zero",
        plus("budget: {seconds: 0}\n"),
        RUN,
        ["{cfg}", "budget.seconds", "greater than"],
    ),
    (
        "seconds negative",
        plus("budget: {seconds: -60}\n"),
        RUN,
        ["{cfg}", "budget.seconds", "greater than"],
    ),
    (
        "seconds a duration string",
        plus("budget: {seconds: 10m}\n"),
        RUN,
        ["{cfg}", "budget.seconds", "number"],
    ),
    (
        "reports_per_run zero",
        plus("budget: {reports_per_run: 0}\n"),
        RUN,
        ["{cfg}", "budget.reports_per_run"],
    ),
    (
        "budget unknown key",
        plus("budget: {hours: 2}\n"),
        RUN,
        ["{cfg}", "budget.hours", "unknown key"],
    ),
    (
        "cpus zero",
        plus("ray: {cpus_per_run: 0}\n"),
        RUN,
        ["{cfg}", "ray.cpus_per_run", "greater than"],
    ),
    (
        "cpus a word",
        plus("ray: {cpus_per_run: two}\n"),
        RUN,
        ["{cfg}", "ray.cpus_per_run", "number"],
    ),
    ("gpus negative", plus("ray: {gpus_per_run: -1}\n"), RUN, ["{cfg}", "ray.gpus_per_run"]),
    ("ray unknown key", plus("ray: {workers: 4}\n"), RUN, ["{cfg}", "ray.workers", "unknown key"]),
    ("address a number", plus("ray: {address: 6379}\n"), RUN, ["{cfg}", "ray.address", "string"]),
    ("storage path a list", plus("ray: {storage_path: [a]}\n"), RUN, ["{cfg}", "ray.storage_path"]),
    # --- command ----------------------------------------------------------------------------
    ("command args a string", plus("command: {args: --lr}\n"), RUN, ["{cfg}", "command.args"]),
    (
        "command args unknown param",
        plus("command:\n  args: ['--lr', '{rate}']\n"),
        RUN,
        ["{cfg}", "command.args"],
    ),
    (
        "command metrics a list",
        plus("command: {metrics: [loss]}\n"),
        RUN,
        ["{cfg}", "command.metrics"],
    ),
    (
        "command metric no group",
        plus("command:\n  metrics: {loss: 'loss [0-9.]+'}\n"),
        RUN,
        ["{cfg}", "command.metrics.loss", "exactly one capture group"],
    ),
    (
        "command metric two groups",
        plus("command:\n  metrics: {loss: '(l)oss ([0-9.]+)'}\n"),
        RUN,
        ["{cfg}", "command.metrics.loss", "exactly one capture group"],
    ),
    (
        "command metric bad regex",
        plus("command:\n  metrics: {loss: 'loss ([0-9.]+'}\n"),
        RUN,
        ["{cfg}", "command.metrics.loss"],
    ),
    (
        "command unknown key",
        plus("command: {shell: true}\n"),
        RUN,
        ["{cfg}", "command.shell", "unknown key"],
    ),
    # --- search (a sweep's extra params) ----------------------------------------------------
    (
        "search domain reversed",
        plus("search:\n  wd: {low: 1.0, high: 0.0}\n"),
        SWEEP,
        ["{cfg}", "search.wd", "low < high"],
    ),
    ("search domain empty", plus("search:\n  wd: {}\n"), SWEEP, ["{cfg}", "search.wd", "a domain"]),
    ("search domain a scalar", plus("search:\n  wd: 0.1\n"), SWEEP, ["{cfg}", "search.wd"]),
    (
        "search unknown key",
        plus("search:\n  wd: {low: 0, high: 1, role: x}\n"),
        SWEEP,
        ["{cfg}", "search.wd.role", "unknown key"],
    ),
    # --- YAML itself ------------------------------------------------------------------------
    ("unclosed bracket", "params: {lr: [\n", RUN, ["{cfg}", "valid YAML"]),
    ("tab indentation", "params:\n\tlr: 0.1\n", RUN, ["{cfg}", "valid YAML"]),
    ("duplicate key", GOOD + "params: {lr: 0.2}\n", RUN, ["{cfg}", "params"]),
    ("unknown tag", plus("budget: !!python/object:os.system {restarts: 1}\n"), RUN, ["{cfg}"]),
    ("recursive alias", plus("ray: &r {x: *r}\n"), RUN, ["{cfg}", "aliases expand it past"]),
    (
        "alias bomb under params",
        cfg("steps: 30,", "steps: 30, bomb: " + bomb() + ","),
        RUN,
        ["{cfg}", "aliases expand it past"],
    ),
    ("undefined alias", plus("budget: *nowhere\n"), RUN, ["{cfg}", "valid YAML"]),
    ("deep nesting", "params: " + "[" * 100_000 + "]" * 100_000 + "\n", RUN, ["{cfg}"]),
    # --- policy files -----------------------------------------------------------------------
    (
        "policy name unknown",
        plus("policy: nonexistent\n"),
        RUN,
        ["policy 'nonexistent'", "expected a policy name"],
    ),
    ("policy file missing", plus("policy: {tmp}/nowhere.yaml\n"), RUN, ["nowhere.yaml"]),
    (
        "policy extends itself",
        policy("extends: {tmp}/policy.yaml\n"),
        RUN,
        ["policy.yaml", "comes back to itself"],
    ),
    ("policy a list", policy("- divergence\n"), RUN, ["policy.yaml", "a mapping"]),
    ("policy not YAML", policy("signatures: {divergence: [\n"), RUN, ["policy.yaml"]),
    (
        "policy signatures a list",
        policy("extends: default\nsignatures: [a, b]\n"),
        RUN,
        ["policy.yaml", "signatures: expected a mapping"],
    ),
    (
        "policy signatures a scalar",
        policy("extends: default\nsignatures: 3\n"),
        RUN,
        ["policy.yaml", "signatures: expected a mapping"],
    ),
    (
        "policy signature a scalar",
        policy("extends: default\nsignatures:\n  divergence: 3\n"),
        RUN,
        ["policy.yaml", "signatures.divergence: expected a mapping"],
    ),
    ("policy extends a number", policy("extends: 3\n"), RUN, ["policy.yaml", "extends: expected"]),
    (
        "policy extends unknown",
        policy("extends: nonexistent\n"),
        RUN,
        ["policy.yaml", "nonexistent"],
    ),
    (
        "detector param a word",
        policy("extends: default\nsignatures:\n  divergence:\n    params: {rise: x}\n"),
        RUN,
        ["policy.yaml", "rise"],
    ),
    (
        "detector param unknown",
        policy("extends: default\nsignatures:\n  divergence:\n    params: {speed: 2}\n"),
        RUN,
        ["policy.yaml", "speed"],
    ),
    (
        "unknown signature",
        policy("extends: default\nsignatures:\n  sadness: {remedies: [lr_cut]}\n"),
        RUN,
        ["policy.yaml", "sadness"],
    ),
    (
        "unknown remedy in a chain",
        policy("extends: default\nsignatures:\n  divergence: {remedies: [pray]}\n"),
        RUN,
        ["policy.yaml", "pray"],
    ),
    (
        "remedy unknown key",
        policy(
            "extends: default\nremedies:\n"
            "  lr_cut: {role: learning_rate, scale: [0.1, 0.5], colour: red}\n"
        ),
        RUN,
        ["policy.yaml", "colour"],
    ),
    (
        "remedy scale reversed",
        policy("extends: default\nremedies:\n  lr_cut: {role: learning_rate, scale: [0.5, 0.1]}\n"),
        RUN,
        ["policy.yaml", "lr_cut"],
    ),
    (
        "signature action unknown",
        policy("extends: default\nsignatures:\n  divergence: {action: panic}\n"),
        RUN,
        ["policy.yaml", "divergence", "action"],
    ),
]

# Cases about files, flags and folders, with the GOOD cfg; ``@name`` is a file _prepare makes.
OTHER: list[tuple[str, list[str], list[str]]] = [
    # --- the cfg file itself ----------------------------------------------------------------
    (
        "cfg missing",
        ["{script}", "--config", "{tmp}/none.yaml", "-q"],
        ["none.yaml", "an existing YAML file"],
    ),
    ("cfg a folder", ["{script}", "--config", "{tmp}", "-q"], ["a folder"]),
    ("cfg a device", ["{script}", "--config", "/dev/zero", "-q"], ["/dev/zero"]),
    ("cfg binary", ["{script}", "--config", "@binary", "-q"], ["binary.yaml", "UTF-8"]),
    ("cfg huge", ["{script}", "--config", "@huge", "-q"], ["huge.yaml", "larger than"]),
    ("cfg fifo", ["{script}", "--config", "@fifo", "-q"], ["fifo.yaml", "not a regular file"]),
    ("cfg flag missing", ["{script}", "-q"], ["--config"]),
    # --- the script -------------------------------------------------------------------------
    (
        "script missing",
        ["{tmp}/nope.py", "--config", "{cfg}", "-q"],
        ["nope.py", "expected an existing training script"],
    ),
    ("script a folder", ["{tmp}", "--config", "{cfg}", "-q"], ["{tmp}"]),
    ("script not UTF-8", ["@latin1", "--config", "{cfg}", "-q"], ["latin1.py", "UTF-8"]),
    (
        "script with a syntax error",
        ["@syntax", "--config", "{cfg}", "-q"],
        ["syntax.py:1", "valid Python"],
    ),
    ("entry missing", ["{script}", "--config", "{cfg}", "--entry", "fit", "-q"], ["fit(config)"]),
    (
        "entry not an identifier",
        ["{script}", "--config", "{cfg}", "--entry", "a b", "-q"],
        ["--entry"],
    ),
    ("no script and no command", ["--config", "{cfg}", "-q"], ["script"]),
    (
        "script and command both",
        ["{script}", "--command", "python x.py", "--config", "{cfg}", "-q"],
        ["--command"],
    ),
    (
        "command unbalanced quote",
        ["--command", "python 'x", "--config", "{cfg}", "-q"],
        ["No closing quotation"],
    ),
    ("command empty", ["--command", "", "--config", "{cfg}", "-q"], ["--command"]),
    (
        "command not found",
        ["--command", "no-such-program-here x.py", "--config", "{cfg}", "-q"],
        ["no-such-program-here"],
    ),
    # --- flags, folders and storages --------------------------------------------------------
    (
        "unknown flag",
        ["{script}", "--config", "{cfg}", "--learning-rate", "3"],
        ["--learning-rate"],
    ),
    ("seed a word", ["{script}", "--config", "{cfg}", "--seed", "x"], ["--seed"]),
    (
        "out is a file",
        ["{script}", "--config", "{cfg}", "--out", "{cfg}", "-q"],
        ["cfg.yaml", "a folder"],
    ),
    (
        "out under a file",
        ["{script}", "--config", "{cfg}", "--out", "{cfg}/out", "-q"],
        ["cfg.yaml"],
    ),
    (
        "storage bogus",
        ["{script}", "--config", "{cfg}", "--out", "{tmp}/o", "--storage", "bogus://x", "-q"],
        ["bogus://x", "Optuna storage"],
    ),
    (
        "storage journal missing folder",
        [
            "{script}",
            "--config",
            "{cfg}",
            "--out",
            "{tmp}/o",
            "--storage",
            "journal:{tmp}/no/j.log",
            "-q",
        ],
        ["j.log", "Optuna storage"],
    ),
    (
        "storage sqlite missing folder",
        [
            "{script}",
            "--config",
            "{cfg}",
            "--out",
            "{tmp}/o",
            "--storage",
            "sqlite:///{tmp}/no/s.db",
            "-q",
        ],
        ["s.db", "Optuna storage"],
    ),
    (
        "address closed port",
        ["{script}", "--config", "{cfg}", "--out", "{tmp}/o", "--address", "127.0.0.1:1", "-q"],
        ["127.0.0.1:1", "no Ray cluster"],
    ),
    (
        "address not host:port",
        ["{script}", "--config", "{cfg}", "--out", "{tmp}/o", "--address", "::::", "-q"],
        ["--address"],
    ),
    # --- sweep flags ------------------------------------------------------------------------
    ("sweep zero trials", [*SWEEP, "--trials", "0"], ["--trials"]),
    ("sweep negative trials", [*SWEEP, "--trials", "-3"], ["--trials"]),
    ("sweep zero parallel", [*SWEEP, "--parallel", "0"], ["--parallel"]),
    ("sweep mode unknown", [*SWEEP, "--mode", "up"], ["--mode"]),
    ("sweep metric not reported anywhere", [*SWEEP, "--metric", ""], ["--metric"]),
    # --- resume and report ------------------------------------------------------------------
    ("resume missing folder", ["resume", "{tmp}/none"], ["none", "no such folder"]),
    ("resume empty folder", ["resume", "{tmp}/files"], ["files", "report.json"]),
    ("resume malformed report.json", ["resume", "@badreport"], ["report.json"]),
    ("resume report.json a list", ["resume", "@listreport"], ["report.json"]),
    ("report missing folder", ["report", "{tmp}/none"], ["none", "no such folder"]),
    ("report empty folder", ["report", "{tmp}/files"], ["files", "no runs"]),
    ("report malformed report.json", ["report", "@badreport"], ["report.json could not be read"]),
    ("report runs not a list", ["report", "@runs5"], ["runs is a int"]),
    ("signatures unknown policy", ["signatures", "--policy", "nonexistent"], ["nonexistent"]),
    ("unknown subcommand flag", ["report", "{tmp}", "--colour"], ["--colour"]),
]


def _prepare(tmp: Path) -> dict[str, str]:
    """The odd files the OTHER cases point at with ``@name``."""
    files = tmp / "files"
    files.mkdir()
    made: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        (files / name).write_bytes(data)
        made[name.split(".")[0]] = str(files / name)

    put("binary.yaml", b"params: \xff\xfe\x00\x01")
    put("huge.yaml", GOOD.encode() + b"# " + b"x" * (1 << 21) + b"\n")
    os.mkfifo(files / "fifo.yaml")
    made["fifo"] = str(files / "fifo.yaml")
    put("latin1.py", "# caf\xe9\ndef train(config):\n    pass\n".encode("latin-1"))
    put("syntax.py", b"def train(config)\n    pass\n")
    for name, text in (("badreport", "{"), ("listreport", "[]"), ("runs5", '{"runs": 5}')):
        folder = tmp / name
        folder.mkdir()
        (folder / "report.json").write_text(text)
        made[name] = str(folder)
    return made


class _Hang(Exception):
    pass


def _run(argv: list[str]) -> int:
    """``main(argv)``, failing the case if it takes more than 30 s (a hang)."""

    def alarm(signum, frame):
        raise _Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(30)
    try:
        try:
            return main(argv)
        except SystemExit as exc:  # argparse
            return int(exc.code or 0)
    except _Hang:
        pytest.fail(f"rescue {' '.join(argv)} hung")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(tmp: Path, capsys, argv: list[str], expected: list[str]) -> None:
    where = {"tmp": str(tmp), "cfg": str(tmp / "cfg.yaml"), "script": str(SCRIPT)}
    made = _prepare(tmp)
    argv = [made[a[1:]] if a.startswith("@") else a.format(**where) for a in argv]
    capsys.readouterr()
    code = _run(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    # argparse prints its usage before the one error line
    assert lines and lines[-1].startswith("rescue") and "error:" in lines[-1], err
    assert all(not line.startswith("rescue") for line in lines[:-1]) or len(lines) == 1, err
    for text in expected:
        assert text.format(**where) in lines[-1], f"{text!r} not in {lines[-1]!r}"
    assert not list(tmp.rglob("study.db")), "nothing may be started"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_cfg_or_policy(tmp_path, capsys, case):
    _, text, argv, expected = case
    assert text is not None
    text = text.replace("{tmp}", str(tmp_path))
    if "#POLICY\n" in text:
        text, policy_text = text.split("#POLICY\n")
        (tmp_path / "policy.yaml").write_text(policy_text)
    (tmp_path / "cfg.yaml").write_text(text)
    _check(tmp_path, capsys, argv, expected)


@pytest.mark.parametrize("case", OTHER, ids=[c[0] for c in OTHER])
def test_a_bad_file_flag_or_folder(tmp_path, capsys, case):
    _, argv, expected = case
    (tmp_path / "cfg.yaml").write_text(GOOD)
    _check(tmp_path, capsys, argv, expected)


def test_the_battery_has_over_a_hundred_cases():
    assert len(CASES) + len(OTHER) >= 100
