"""Running the real `rescue` command on a written cfg.yaml, as the integration tests do."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from example_runs import EXAMPLES
from rescue.cli.main import main

SCRIPTS = Path(__file__).parent / "scripts"

# sgd_regression diverges at lr 0.9; below ~0.1 it meets the target.
DIVERGING = """\
params: {lr: 0.9, steps: 300, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 1.0, log: true}
success:
  loss: {below: 0.05}
budget: {restarts: 3}
"""


def run_rescue(
    tmp_path: Path,
    cfg_text: str,
    script: str = "sgd_regression.py",
    extra: Sequence[str] = (),
    page: bool = False,
) -> tuple[int, dict[str, Any], Path]:
    """``rescue SCRIPT --config cfg.yaml --out OUT``; a script name is looked up in scripts/.
    The page (report.html, plots/) is drawn only with ``page``: test_report_html tests it,
    and drawing it costs every other rescue a few seconds."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(cfg_text)
    out = tmp_path / "out"
    extra = [*extra, *([] if page else ["--no-page"])]
    return _rescue(SCRIPTS / script, cfg, out, extra)


def rescue_example(
    tmp_path: Path, name: str, cfg: Path | None = None
) -> tuple[int, dict[str, Any], Path]:
    """``rescue examples/NAME/train.py --config CFG`` (the example's own cfg.yaml by default),
    quiet and without the page."""
    folder = EXAMPLES / name
    out = tmp_path / "out"
    cfg = cfg or folder / "cfg.yaml"
    return _rescue(folder / "train.py", cfg, out, ["-q", "--no-page"])


def _rescue(
    script: Path, cfg: Path, out: Path, extra: Sequence[str]
) -> tuple[int, dict[str, Any], Path]:
    code = main([str(script), "--config", str(cfg), "--out", str(out), *extra])
    report = json.loads((out / "report.json").read_text())
    return code, report, out


def judged_in_worker(
    out: Path, run: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """What run ``run``'s worker judged, from Ray Tune's record of its results (result.json):
    the findings at its reports, and its end-of-run checks (None if it sent none)."""
    (trial,) = (out / "ray").glob(f"*/run-{run:03d}")
    findings: list[dict[str, Any]] = []
    ending: list[dict[str, Any]] | None = None
    for line in (trial / "result.json").read_text().splitlines():
        judged = json.loads(line).get("rescue_judged")
        if judged:
            data = json.loads(judged)
            findings += [f for said in data["at"].values() for f in said.get("findings", [])]
            if "ending" in data:
                ending = data["ending"]
    return findings, ending
