"""Writing the report: ``report.html`` and ``plots/*.png`` in the output folder, from what the
rescue saved there. Called at the end of every rescue and by ``rescue report OUTDIR``."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from rescue import layout
from rescue.page.data import ReportData, RunData, load_report
from rescue.page.html import render_html
from rescue.page.plots import hide_title, overview_figure, run_figure, save_png, to_svg


@dataclass
class ReportFiles:
    """What was written, and what could not be drawn (also listed on the page)."""

    html: Path
    pngs: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    interrupted: bool = False


# A run's figure can be drawn ahead of the page once the run is in one of these states.
ENDED = ("stopped", "completed", "crashed")


class DrawnFigures:
    """The run figures drawn so far in this process, by what they show, so that a run
    unchanged since its figure was drawn (ahead of the page, while the next run trained) is
    not drawn again: a run's figure is the slow part of the page, a second or two of
    matplotlib for a dozen panels.

    >>> DrawnFigures().svgs
    {}
    """

    def __init__(self) -> None:
        self.svgs: dict[str, str] = {}  # what a figure shows (its key) -> its <svg>

    def run_svg(self, data: ReportData, run: RunData, png: Path) -> str:
        """``run``'s figure, written to ``png``, as an ``<svg>`` for the page; drawn only if
        this process has not drawn it as it is, or its PNG is gone."""
        key = _figure_key(data, run)
        if key in self.svgs and png.is_file():
            return self.svgs[key]
        figure = run_figure(data, run)
        save_png(figure, png)
        hide_title(figure)  # the page's section heading says it
        self.svgs[key] = svg = to_svg(figure)
        return svg

    def draw_ended(self, out: str | Path) -> None:
        """Draw the figures of the runs of ``out`` that have ended, ahead of the page."""
        data = load_report(out)
        for run in data.runs:
            if run.status in ENDED and run.metric_names():
                self.run_svg(data, run, _run_png(Path(out), run))


def _figure_key(data: ReportData, run: RunData) -> str:
    """All a run figure is drawn from: the run whole, and what the page's data says of every
    run (the unit, the knobs shown, the success targets, the metrics' kinds)."""
    shown = repr((data.unit, data.knobs, data.success, data.kinds, run))
    return hashlib.sha256(shown.encode()).hexdigest()


def _run_png(out: Path, run: RunData) -> Path:
    return out / layout.PLOTS / f"{layout.run_name(run.run)}.png"


def write_report(out: str | Path, drawn: DrawnFigures | None = None) -> ReportFiles:
    """Render ``out/report.html``, ``out/plots/run-NNN.png`` and ``out/plots/overview.png``;
    with ``drawn``, the runs whose figures it holds as they are now are not drawn again.

    Raises :class:`~rescue.page.data.ReportDataError` when ``out`` holds no run. A figure
    that fails to draw is left out and named on the page, so one odd metric costs one plot.
    """
    out = Path(out)
    drawn = drawn or DrawnFigures()
    data = load_report(out)
    plots = out / layout.PLOTS
    files = ReportFiles(html=out / layout.PAGE, interrupted=data.interrupted)
    overview_svg = None
    if data.key_metric() is not None:  # else no run reported a metric: no empty chart
        try:
            figure = overview_figure(data)
            save_png(figure, plots / "overview.png")
            files.pngs.append(plots / "overview.png")
            overview_svg = to_svg(figure)
        except Exception as exc:
            files.problems.append(f"the overview plot could not be drawn: {exc!r}")
    run_svgs: dict[int, str] = {}
    for run in data.runs:
        path = _run_png(out, run)
        if not run.metric_names():
            continue  # the page says that no metrics were recorded
        try:
            run_svgs[run.run] = drawn.run_svg(data, run, path)
            files.pngs.append(path)
        except Exception as exc:
            files.problems.append(f"run {run.run}'s plot could not be drawn: {exc!r}")
    data.notes += files.problems
    tmp = files.html.with_suffix(".html.tmp")
    tmp.write_text(render_html(data, overview_svg, run_svgs), encoding="utf-8")
    os.replace(tmp, files.html)  # a reader never sees half a page
    return files
