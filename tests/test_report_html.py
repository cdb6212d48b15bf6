"""report.html and plots/: self-contained, complete, re-rendered by ``rescue report OUTDIR``,
also for an interrupted rescue; checked in a real browser when chromium is installed."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from cli_runs import DIVERGING, run_rescue
from rescue.cli.main import main
from rescue.detectors.findings import Finding
from rescue.engine.record import RescueReport, RunRecord
from rescue.page.data import load_report
from rescue.page.plots import panels
from rescue.page.writer import write_report

CHROMIUM = Path("/usr/bin/chromium")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CFG = """\
params: {lr: 1.5, steps: 40, seed: 0}
knobs:
  lr: {role: learning_rate, low: 1.0e-5, high: 3.0, log: true}
success:
  train_mse: {below: 0.01}
"""

DIVERGENCE = Finding(
    "divergence",
    "loss",
    10,
    "loss rose +763% above its best (0.1344 -> 1.16) over 2 reports",
    onset=9,
    evidence={"best": 0.1344, "best_step": 7, "level": 1.16},
)
SILENT = Finding(
    "silent_metric",
    "grad_norm",
    19,
    "grad_norm has been exactly 0 for 20 reports while loss moved 62%",
    onset=0,
    evidence={"value": 0.0, "reports": 20},
    action="warn",
)


def _diverging_history() -> list[dict]:
    """An LSTM-like run whose loss falls, then climbs from report 8 on, with rescue.watch's
    health metrics every other report and a class-usage vector."""
    rows = []
    for step in range(11):
        loss = 0.4 * 0.7**step if step < 8 else 0.13 * 3.0 ** (step - 7)
        row = {"step": step, "loss": loss, "train_mse": loss * 0.9, "grad_norm": 1.0 + step / 5}
        row["usage"] = [0.4 + step * 0.05, 0.6 - step * 0.05]
        if step % 2 == 0:
            row.update(grad_norm_total=1.0 + step, grad_norm_max_layer=0.8 + step)
            row.update(update_ratio=1e-3 * 2**step, input_absmax=1.0, output_std=0.5)
        rows.append(row)
    rows[-1]["train_mse"] = math.nan  # non-finite values are drawn as marks, not lost
    return rows


def _healthy_history() -> list[dict]:
    return [
        {"step": s, "loss": 0.4 / (1 + s), "train_mse": 0.3 / (1 + s), "grad_norm": 0.0}
        for s in range(40)
    ]


def _write_history(out: Path, run: int, rows: list[dict]) -> None:
    folder = out / "runs" / f"run-{run:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rescued(tmp_path: Path) -> Path:
    """An output folder as a rescue leaves it: run 0 diverged, lr cut, run 1 healthy."""
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CFG)
    report = RescueReport(
        script=str(tmp_path / "train.py"),
        config_file=str(cfg),
        out=str(out),
        storage="sqlite:///study.db",
        study="rescue-out",
        knobs=["lr"],
    )
    first = RunRecord(run=0, config={"lr": 1.5, "steps": 40, "seed": 0}, status="stopped")
    first.reports, first.findings, first.seconds = 11, [DIVERGENCE], 4.7
    first.final_metrics = {"loss": 1.16, "train_mse": float("nan")}
    first.remedy = {
        "name": "lr_cut",
        "for": "divergence",
        "search_space": {"lr": "FloatDistribution(high=0.75, log=True, low=0.015, step=None)"},
        "changes": {"lr": [1.5, 0.1284]},
    }
    second = RunRecord(run=1, config={"lr": 0.1284, "steps": 40, "seed": 0}, status="completed")
    second.reports, second.findings, second.met_success = 40, [SILENT], True
    second.final_metrics = {"loss": 0.00976, "train_mse": 0.0073}
    report.runs += [first, second]
    report.outcome, report.final_config = "rescued", second.config
    report.summary = "run 1 finished healthy after 1 restart(s) for divergence"
    out.mkdir()
    report.write(out / "report.json")
    _write_history(out, 0, _diverging_history())
    _write_history(out, 1, _healthy_history())
    return out


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _check_page(out: Path) -> str:
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert not EXTERNAL.search(html), "the page must not load anything from the network"
    assert "<script" not in html.lower() and "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(?!#)", html)  # only references inside the page
    for name in ("overview.png", *(f"run-{r:03d}.png" for r in range(len(_runs(out))))):
        width, height = _png_size(out / "plots" / name)
        assert width > 300 and height > 200
    return html


def _runs(out: Path) -> list[Path]:
    return sorted((out / "runs").glob("run-*"))


def test_the_page_is_self_contained_and_names_every_run_finding_remedy_and_warning(tmp_path):
    out = _rescued(tmp_path)
    files = write_report(out)
    assert files.problems == [] and not files.interrupted
    html = _check_page(out)

    assert "rescued" in html and "run 1 finished healthy after 1 restart(s) for divergence" in html
    assert "run 0" in html and "run 1" in html
    for finding in (DIVERGENCE, SILENT):
        assert finding.signature in html and finding.metric in html
        assert finding.reason.replace(">", "&gt;") in html
    assert "lr_cut" in html and "lr 1.5 → 0.1284" in html  # the remedy's change
    assert "in [0.015, 0.75] log-uniform" in html  # what Optuna searched
    assert "target &lt; 0.01" in html  # the success target, on the run cards
    assert html.count("<svg") == 3  # the overview and one figure per run, inline
    assert {p.name for p in (out / "plots").iterdir()} == {
        "overview.png",
        "run-000.png",
        "run-001.png",
    }


def test_watch_metrics_form_their_own_group_and_vectors_are_shares(tmp_path):
    data = load_report(_rescued(tmp_path))
    user, watch = panels(data.runs[0])
    assert [p.title for p in user] == ["loss", "train_mse", "grad_norm", "usage"]
    assert [p.vector for p in user] == [False, False, False, True]
    assert [p.metrics for p in watch] == [
        ("grad_norm_total", "grad_norm_max_layer"),
        ("update_ratio",),
        ("input_absmax",),
        ("output_std",),
    ]
    assert data.key_metric() == "train_mse"  # the success metric tells the story
    assert data.runs[0].series("update_ratio")[0] == [0, 2, 4, 6, 8, 10]  # gaps kept as gaps


def test_rescue_report_re_renders_from_the_saved_data(tmp_path, capsys):
    out = _rescued(tmp_path)
    write_report(out)
    (out / "report.html").unlink()
    shutil.rmtree(out / "plots")

    assert main(["report", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    html = _check_page(out)
    assert "divergence" in html and "interrupted" not in html


def test_an_interrupted_rescue_without_report_json_renders_from_its_metrics(tmp_path):
    out = _rescued(tmp_path)
    (out / "report.json").unlink()
    with (out / "runs" / "run-001" / "metrics.jsonl").open("a") as f:
        f.write('{"step": 40, "loss": 0.0')  # the line a killed run left half-written
    # Ray Tune's trial folder still holds each run's config (and the run's settings).
    for run, lr in ((0, 1.5), (1, 0.1284)):
        trial = out / "ray" / "rescue-20261206-120000" / f"run-{run:03d}"
        trial.mkdir(parents=True)
        settings = {"log_dir": str(out / "runs" / f"run-{run:03d}")}
        params = {"lr": lr, "steps": 40, "rescue_run": settings}
        (trial / "params.json").write_text(json.dumps(params))

    assert main(["report", str(out)]) == 0
    html = _check_page(out)
    assert "interrupted" in html and "report.json is missing" in html
    assert "run 0" in html and "run 1" in html
    assert "lr 1.5 → 0.1284" in html  # what changed, from the two configs
    assert "rescue_run" not in html  # the user's params only
    data = load_report(out)
    assert data.interrupted and [r.reports for r in data.runs] == [11, 40]


def test_a_partial_report_json_keeps_what_it_recorded_and_says_interrupted(tmp_path):
    out = _rescued(tmp_path)
    saved = json.loads((out / "report.json").read_text())
    saved["outcome"], saved["summary"] = "running", ""
    saved["runs"] = saved["runs"][:1]  # run 1 was still training
    saved["runs"][0]["remedy"]["changes"] = {}  # filled only when the next run starts
    (out / "report.json").write_text(json.dumps(saved))
    trial = out / "ray" / "rescue-20261206-120000" / "run-001"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"lr": 0.1284, "steps": 40, "seed": 0}))

    files = write_report(out)
    assert files.interrupted
    html = _check_page(out)
    assert "interrupted during run 1 after 40 reports" in html
    assert "divergence" in html and "lr_cut" in html and "lr 1.5 → 0.1284" in html


def test_a_sweep_folder_gets_a_leaderboard_not_a_chain_of_restarts(tmp_path):
    from rescue.engine.sweep import Objective, SweepReport, SweepTrial

    out = tmp_path / "out"
    report = SweepReport(script="t.py", config_file="", out=str(out), storage="x", study="s")
    report.objective, report.params, report.requested = Objective("loss", "min"), ["lr"], 4
    rows = {0: _diverging_history(), 1: _healthy_history(), 2: _healthy_history()[:20]}
    diverged = SweepTrial(run=0, config={"lr": 1.5}, status="stopped", outcome="diagnosed")
    diverged.findings, diverged.reports = [DIVERGENCE], 11
    best = SweepTrial(run=1, config={"lr": 0.1}, status="completed", outcome="healthy")
    best.met_success, best.objective, best.reports = True, 0.00976, 40
    short = SweepTrial(run=2, config={"lr": 0.01}, status="completed", outcome="healthy")
    short.objective, short.reports = 0.02, 20  # met_success stays False: missed the target
    rescue = SweepTrial(run=3, config={"lr": 0.3}, status="completed", outcome="healthy")
    rescue.met_success, rescue.objective, rescue.reports, rescue.rescue_of = True, 0.05, 40, 0
    rows[3] = _healthy_history()
    report.runs = [diverged, best, short, rescue]
    report.best_trial, report.final_config, report.outcome = 1, best.config, "healthy"
    out.mkdir()
    report.write(out / "report.json")
    for run, history in rows.items():
        _write_history(out, run, history)

    write_report(out)
    html = (out / "report.html").read_text()
    assert "What happened" not in html and 'class="flow"' not in html  # no chain of restarts
    assert "Leaderboard · minimise loss" in html and "Across trials" in html
    board = html[html.index("Leaderboard") : html.index("</table>")]
    assert [int(t) for t in re.findall(r'href="#run-\d+">(\d+)<', board)] == [1, 2, 3, 0]
    assert "missed target" in board and "rescue of trial 0" in board and "divergence" in board
    assert "trials per signature: healthy 3, divergence 1" in html
    assert "Best config (trial 1)" in html and "trial 2 · completed" in html


def test_a_crash_before_any_report_draws_no_empty_chart_and_is_not_called_a_restart(tmp_path):
    out = tmp_path / "out"
    report = RescueReport(script="t.py", config_file="", out=str(out), storage="x", study="s")
    crashed = RunRecord(run=0, config={"lr": 0.1}, status="crashed")
    crashed.error = "RuntimeError: shape mismatch"
    crashed.findings = [Finding("crash", None, 0, "the training function raised: RuntimeError")]
    report.runs.append(crashed)
    report.outcome = "not_rescued"
    out.mkdir()
    report.write(out / "report.json")
    (out / "runs" / "run-000").mkdir(parents=True)

    files = write_report(out)
    assert files.pngs == [] and files.problems == []
    html = (out / "report.html").read_text()
    assert "<svg" not in html and "Across runs" not in html
    assert "no metrics were recorded for this run" in html
    assert "<td>no remedy</td>" in html and "<td>restart</td>" not in html


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None], ids=["empty", "missing"])
def test_an_outdir_without_runs_is_a_one_line_error_with_exit_2(tmp_path, capsys, make):
    out = tmp_path / "out"
    make(out)
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rescue: error: {out}: ") and "\n" not in err
    assert not (out / "report.html").exists()


def test_a_rendering_failure_costs_the_page_not_report_json(tmp_path, monkeypatch, capsys):
    from rescue.page import writer as report_writer
    from rescue.page.meanwhile import page_drawn_meanwhile

    def broken(out, figures=None):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(report_writer, "write_report", broken)
    with page_drawn_meanwhile(tmp_path):
        pass
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning: report.html not written" in err and "no fonts" in err


def test_the_page_is_drawn_while_ray_stops_and_waited_for(tmp_path, monkeypatch):
    import threading

    from rescue.page import writer as report_writer
    from rescue.page.meanwhile import page_drawn_meanwhile

    started, drawn = threading.Event(), []

    def slow(out, figures=None):
        started.set()
        time.sleep(0.3)
        drawn.append(out)

    monkeypatch.setattr(report_writer, "write_report", slow)
    with page_drawn_meanwhile(tmp_path):
        # The body (Ray's shutdown) runs while the page is drawn, not before or after it.
        assert started.wait(5)
        assert drawn == []
    assert drawn == [tmp_path]  # and the page is finished when the block ends
    with page_drawn_meanwhile(tmp_path, draw=False):
        pass
    assert drawn == [tmp_path]


def _count_run_figures(monkeypatch) -> list[int]:
    """The runs whose figures are drawn from now on, in order."""
    from rescue.page import writer

    drawn, real = [], writer.run_figure

    def counted(data, run):
        drawn.append(run.run)
        return real(data, run)

    monkeypatch.setattr(writer, "run_figure", counted)
    return drawn


def test_a_run_figure_is_drawn_again_only_when_the_run_changed_or_its_png_is_gone(
    tmp_path, monkeypatch
):
    from rescue.page.writer import DrawnFigures

    out = _rescued(tmp_path)
    figures = DrawnFigures()
    drawn = _count_run_figures(monkeypatch)
    first = (write_report(out, figures), (out / "report.html").read_text())
    assert drawn == [0, 1]
    second = (write_report(out, figures), (out / "report.html").read_text())
    assert drawn == [0, 1]  # nothing changed: the page is the same, no figure drawn

    def ids_out(page: str) -> str:  # the overview, drawn anew, has new SVG element ids
        return re.sub(r"[0-9a-f]{10}", "", page)

    assert ids_out(second[1]) == ids_out(first[1]) and second[0].pngs == first[0].pngs
    _write_history(out, 1, _healthy_history()[:30])  # run 1's metrics are not what they were
    (out / "plots" / "run-000.png").unlink()
    write_report(out, figures)
    assert drawn == [0, 1, 0, 1]
    _check_page(out)


def test_the_painter_draws_ended_runs_while_the_next_run_reports_and_the_page_reuses_them(
    tmp_path, monkeypatch
):
    from rescue.page.meanwhile import PagePainter

    out = _rescued(tmp_path)
    saved = json.loads((out / "report.json").read_text())
    saved["runs"][1]["status"] = "running"  # run 1 is training: only run 0 has ended
    (out / "report.json").write_text(json.dumps(saved))
    drawn = _count_run_figures(monkeypatch)
    painter = PagePainter(out)
    painter.run_started(RunRecord(run=1, config={}), {})
    assert drawn == [] and painter._ahead is None  # not while the run starts
    painter.reported(0, {"loss": 0.4}, [])
    painter.reported(1, {"loss": 0.3}, [])  # one drawing per ended run
    painter._ahead.join(30)
    assert drawn == [0]
    (tmp_path / "again").mkdir()
    _rescued(tmp_path / "again")  # run 1 ended as report.json says
    shutil.copy(tmp_path / "again" / "out" / "report.json", out / "report.json")
    with painter.finally_drawn():
        pass
    assert drawn == [0, 1]  # run 0 was not drawn again
    _check_page(out)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_the_page_renders_in_a_headless_browser(tmp_path):
    out = _rescued(tmp_path)
    write_report(out)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # chromium refuses to run as root without it
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1400,2000",
            (out / "report.html").resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert _png_size(shot) == (1400, 2000)
    pixels = imread(shot)[..., :3]
    assert shot.stat().st_size > 50_000  # a blank page compresses to a few KB
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text, plots, the outcome banner: not an empty page
    # The outcome banner (green: rescued) is at the top of the page.
    top = pixels[20:90, 40:1360].reshape(-1, 3)
    greenish = (top[:, 1] > top[:, 0] + 0.15) & (top[:, 1] > top[:, 2] + 0.15)
    assert greenish.mean() > 0.5


@pytest.mark.integration
def test_a_real_rescue_writes_the_page_and_rescue_report_rebuilds_it(local_ray, tmp_path):
    code, report, out = run_rescue(tmp_path, DIVERGING, extra=["--quiet"], page=True)
    assert code == 0
    html = _check_page(out)
    first = report["runs"][0]
    assert first["findings"][0]["signature"] in html and first["remedy"]["name"] in html
    for change in first["remedy"]["changes"]:
        assert change in html
    before = (out / "plots" / "overview.png").stat().st_mtime_ns
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert _check_page(out).count("<svg") == len(report["runs"]) + 1
    assert (out / "plots" / "overview.png").stat().st_mtime_ns >= before


@pytest.mark.integration
def test_no_page_skips_the_drawing_and_rescue_report_draws_it_later(local_ray, tmp_path):
    code, _, out = run_rescue(tmp_path, DIVERGING, extra=["--quiet"])  # --no-page
    assert code == 0 and not (out / "report.html").exists() and not (out / "plots").exists()
    assert main(["report", str(out)]) == 0
    _check_page(out)
