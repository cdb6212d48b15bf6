"""Writing the report: ``report.html`` and ``plots/*.png`` in the output folder, from what the
rescue saved there. Called at the end of every rescue and by ``rescue report OUTDIR``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rescue import layout
from rescue.page.data import load_report
from rescue.page.html import render_html
from rescue.page.plots import hide_title, overview_figure, run_figure, save_png, to_svg


@dataclass
class ReportFiles:
    """What was written, and what could not be drawn (also listed on the page)."""

    html: Path
    pngs: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    interrupted: bool = False


def write_report(out: str | Path) -> ReportFiles:
    """Render ``out/report.html``, ``out/plots/run-NNN.png`` and ``out/plots/overview.png``.

    Raises :class:`~rescue.page.data.ReportDataError` when ``out`` holds no run. A figure
    that fails to draw is left out and named on the page, so one odd metric costs one plot.
    """
    out = Path(out)
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
        path = plots / f"{layout.run_name(run.run)}.png"
        if not run.metric_names():
            continue  # the page says that no metrics were recorded
        try:
            figure = run_figure(data, run)
            save_png(figure, path)
            files.pngs.append(path)
            hide_title(figure)  # the page's section heading says it
            run_svgs[run.run] = to_svg(figure)
        except Exception as exc:
            files.problems.append(f"run {run.run}'s plot could not be drawn: {exc!r}")
    data.notes += files.problems
    tmp = files.html.with_suffix(".html.tmp")
    tmp.write_text(render_html(data, overview_svg, run_svgs), encoding="utf-8")
    os.replace(tmp, files.html)  # a reader never sees half a page
    return files
