"""The report's figures (matplotlib): one per run with every watched metric, the finding's
onset and confirmation marked on it and the success target drawn, and an overview of the key
metric across all runs.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, never through
pyplot: no GUI backend is touched and nothing global is left behind in a user's session.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure

from rescue.detectors.findings import Finding
from rescue.page.data import WATCH_METRICS, ReportData, RunData

RESTART = "#c62828"
WARN = "#e08a00"
TARGET = "#2e7d32"
INK = "#263238"
MUTED = "#78909c"
# Runs are told apart by colours that never read as "failed" (red) or "healthy" (green).
RUN_COLOURS = ("#1565c0", "#7b1fa2", "#00838f", "#5d4037", "#c2185b", "#455a64", "#f9a825")
LOG_SPAN = 50.0  # a positive metric spanning this factor or more is drawn on a log scale
PANEL_SIZE = (3.4, 2.35)  # inches
_STYLE = {
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.edgecolor": "#b0bec5",
    "axes.labelcolor": INK,
    "axes.grid": True,
    "grid.color": "#eceff1",
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "svg.fonttype": "none",  # text stays text: small files, the page's font
}
_svg_ids = count()


@dataclass(frozen=True)
class Panel:
    """One small plot: its title and the metrics drawn on it (several share a panel when they
    are one signal, such as the total, smallest and largest per-layer gradient norms)."""

    title: str
    metrics: tuple[str, ...]
    vector: bool = False


_WATCH_PANELS = (
    Panel("gradient norm", ("grad_norm_total", "grad_norm_max_layer", "grad_norm_min_layer")),
    Panel("update_ratio", ("update_ratio",)),
    Panel("weight_norm", ("weight_norm",)),
    Panel("dead_fraction", ("dead_fraction",)),
    Panel("saturated_fraction", ("saturated_fraction",)),
    Panel("input scale", ("input_absmax", "input_std")),
    Panel("input_mean", ("input_mean",)),
    Panel("output_std", ("output_std",)),
)


def panels(run: RunData) -> tuple[list[Panel], list[Panel]]:
    """The run's panels: the user's metrics (in the order reported), and ``rescue.watch``'s."""
    names = run.metric_names()
    user = [Panel(n, (n,), run.is_vector(n)) for n in names if n not in WATCH_METRICS]
    watch = []
    for panel in _WATCH_PANELS:
        present = tuple(m for m in panel.metrics if m in names)
        if present:
            title = panel.title if len(present) > 1 else present[0]
            watch.append(Panel(title, present))
    return user, watch


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_STYLE):
        yield


def run_figure(data: ReportData, run: RunData) -> Figure:
    """Every metric of ``run``: the user's on the left, ``rescue.watch``'s on the right."""
    user, watch = panels(run)
    groups = [
        (g, t) for g, t in ((user, "your metrics"), (watch, "model health · rescue.watch")) if g
    ]
    if not groups:
        groups = [([], "no metrics reported")]
    columns = [_columns(len(g), len(groups)) for g, _ in groups]
    rows = max(max(1, math.ceil(len(g) / c)) for (g, _), c in zip(groups, columns))
    with _style():
        fig = Figure(
            figsize=(PANEL_SIZE[0] * max(sum(columns), 2), PANEL_SIZE[1] * rows + 0.7),
            layout="constrained",
        )
        FigureCanvasAgg(fig)
        fig.suptitle(_run_title(data, run), x=0.01, ha="left", fontsize=11, color=INK)
        subfigs = fig.subfigures(1, len(groups), width_ratios=columns, wspace=0.04)
        for subfig, (group, title), cols in zip(np.atleast_1d(subfigs), groups, columns):
            _draw_group(subfig, data, run, group, title, rows, cols)
    return fig


def overview_figure(data: ReportData) -> Figure:
    """The key metric of every run on one axis, each run in its colour, findings marked."""
    key = data.key_metric()
    with _style():
        fig = Figure(figsize=(10.5, 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        drawn: list[float] = []
        for run in data.runs:
            colour = run_colour(run.run)
            steps, values = run.series(key) if key else ([], [])
            finite = [v for v in values if math.isfinite(v)]
            drawn += finite
            label = f"{data.unit} {run.run}  {_knob_text(data, run)}  → {run.outcome}"
            ax.plot(
                steps,
                _finite_or_nan(values),
                color=colour,
                lw=1.8,
                label=label,
                marker="o" if len(steps) < 12 else None,
                ms=3,
            )
            _mark_non_finite(ax, steps, values, colour)
            for finding in run.findings:
                _mark_on_curve(ax, finding, steps, values, colour)
        target = data.threshold(key) if key else None
        if _wants_log(drawn + ([target.value] if target else [])):
            ax.set_yscale("log")
        if target is not None:
            _draw_target(ax, target.value, target.describe())
        title = f"{key or 'no metric'} across {data.unit}s"
        ax.set_title(title, loc="left", color=INK, fontsize=11)
        ax.set_xlabel("report")
        if data.runs and key:
            ax.legend(loc="best", fontsize=8.5)
    return fig


def save_png(fig: Figure, path: Path, dpi: int = 110) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _style():
        fig.savefig(path, format="png", dpi=dpi, facecolor="white")


def to_svg(fig: Figure) -> str:
    """``fig`` as an ``<svg>`` element to inline in HTML: no XML prologue or metadata, and
    element ids unique across the figures of one page."""
    buffer = io.StringIO()
    with _style(), matplotlib.rc_context({"svg.hashsalt": f"rescue-{next(_svg_ids)}"}):
        fig.savefig(buffer, format="svg", facecolor="white", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    # Scale with the page: the viewBox keeps the proportions.
    return re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"', svg, count=1
    )


def hide_title(fig: Figure) -> None:
    """Drop the figure's own title where the page already says it."""
    if fig._suptitle is not None:  # matplotlib has no public accessor before 3.10
        fig._suptitle.set_visible(False)


def run_colour(number: int) -> str:
    return RUN_COLOURS[number % len(RUN_COLOURS)]


# --- drawing ---------------------------------------------------------------------------------


def _columns(panels_in_group: int, groups: int) -> int:
    if groups == 1:
        return max(1, min(4, panels_in_group))
    return 1 if panels_in_group <= 1 else 2


def _draw_group(
    subfig: SubFigure,
    data: ReportData,
    run: RunData,
    group: Sequence[Panel],
    title: str,
    rows: int,
    cols: int,
) -> None:
    subfig.suptitle(title, x=0.02, ha="left", fontsize=9.5, color=MUTED, fontweight="bold")
    axes = np.atleast_1d(subfig.subplots(rows, cols, squeeze=False)).ravel()
    last_step = max((row.step for row in run.history), default=0)
    for ax, panel in zip(axes, group):
        if panel.vector:
            _draw_vector(ax, run, panel.metrics[0])
        else:
            _draw_scalar(ax, data, run, panel)
        _mark_findings(ax, run, panel)
        ax.set_xlim(-0.5, max(last_step, 1) + 0.5)
    for ax in axes[len(group) :]:
        ax.set_visible(False)
    for ax in axes[max(0, len(group) - cols) : len(group)]:
        ax.set_xlabel("report", color=MUTED)


def _draw_scalar(ax: Axes, data: ReportData, run: RunData, panel: Panel) -> None:
    drawn: list[float] = []
    several = len(panel.metrics) > 1
    last_values = []
    for index, name in enumerate(panel.metrics):
        steps, values = run.series(name)
        colour = INK if not several else ("#1565c0", "#ef6c00", "#6a1b9a")[index % 3]
        ax.plot(
            steps,
            _finite_or_nan(values),
            color=colour,
            lw=1.5,
            label=name.replace("grad_norm_", "").replace("input_", ""),
            marker="o" if len(steps) < 12 else None,
            ms=3,
        )
        _mark_non_finite(ax, steps, values, RESTART)
        drawn += [v for v in values if math.isfinite(v)]
        if values:
            last_values.append(values[-1])
    target = data.threshold(panel.metrics[0]) if not several else None
    if _wants_log(drawn + ([target.value] if target else [])):
        ax.set_yscale("log")
    if target is not None:
        _draw_target(ax, target.value, target.describe())
    if several:
        ax.legend(fontsize=7, loc="best", handlelength=1.2)
    colour = RESTART if _restart_metric(run) in panel.metrics else INK
    ax.set_title(panel.title, loc="left", color=colour, fontweight="bold")
    if len(last_values) == 1:
        ax.set_title(f"last {_num(last_values[0])}", loc="right", color=MUTED, fontsize=8)


def _draw_vector(ax: Axes, run: RunData, name: str) -> None:
    """A distribution per report (class usage): stacked shares, and the largest share."""
    steps, vectors = run.vectors(name)
    width = max((len(v) for v in vectors), default=0)
    if width:
        matrix = np.zeros((len(vectors), width))
        for i, vector in enumerate(vectors):
            matrix[i, : len(vector)] = np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)
        totals = matrix.sum(axis=1, keepdims=True)
        shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        if width <= 20:  # beyond that the bands are too thin to tell apart
            colours = matplotlib.colormaps["tab20" if width > 10 else "tab10"].colors[:width]
            ax.stackplot(steps, shares.T, colors=colours, alpha=0.5, lw=0)
        ax.plot(steps, shares.max(axis=1), color=INK, lw=1.6)
    ax.set_ylim(0, 1.02)
    colour = RESTART if _restart_metric(run) == name else INK
    ax.set_title(f"{name}: shares, — largest", loc="left", color=colour, fontweight="bold")
    if vectors:
        ax.set_title(
            f"largest {max(vectors[-1], default=0):.0%}", loc="right", color=MUTED, fontsize=8
        )


def _mark_findings(ax: Axes, run: RunData, panel: Panel) -> None:
    """On the finding's own metric: the span from onset to confirmation, shaded, a line at the
    confirmation and the signature's name; on the other panels a faint line at the stop, so
    the moment lines up across panels."""
    right = ax.get_xlim()[1]
    for finding in run.findings:
        colour = RESTART if finding.action == "restart" else WARN
        if finding.metric in panel.metrics or finding.metric is None:
            onset = finding.onset if finding.onset is not None else finding.step
            ax.axvspan(onset - 0.5, finding.step + 0.5, color=colour, alpha=0.13, lw=0)
            ax.axvline(finding.step, color=colour, lw=1.4)
            near_end = finding.step > 0.7 * right
            ax.text(
                finding.step + (-0.6 if near_end else 0.6),
                0.97,
                finding.signature,
                transform=ax.get_xaxis_transform(),
                color=colour,
                ha="right" if near_end else "left",
                va="top",
                fontsize=8,
                fontweight="bold",
                bbox={"facecolor": "white", "alpha": 0.75, "lw": 0, "pad": 0.6},
            )
        elif finding.action == "restart":
            ax.axvline(finding.step, color=colour, lw=0.9, ls=":", alpha=0.8)


def _mark_on_curve(
    ax: Axes, finding: Finding, steps: list[int], values: list[float], colour: str
) -> None:
    """The overview: a cross where the run was confirmed sick, with the signature's name."""
    if not steps:
        return
    index = min(range(len(steps)), key=lambda i: abs(steps[i] - finding.step))
    y = values[index]
    if not math.isfinite(y):
        finite = [v for v in values[: index + 1] if math.isfinite(v)]
        if not finite:
            return
        y = finite[-1]
    restart = finding.action == "restart"
    edge = RESTART if restart else WARN
    ax.plot(
        [steps[index]],
        [y],
        marker="X" if restart else "D",
        ms=11 if restart else 6,
        color=colour if restart else WARN,
        mec=edge,
        mew=1.5,
        zorder=5,
    )
    label = finding.signature + (f" ({finding.metric})" if finding.metric else "")
    ax.annotate(
        label + ("" if restart else ", warning"),
        (steps[index], y),
        xytext=(6, 6),
        textcoords="offset points",
        color=edge,
        fontsize=9 if restart else 8,
        fontweight="bold" if restart else "normal",
    )


def _draw_target(ax: Axes, value: float, text: str) -> None:
    """The success target as a dashed line, labelled below it when it runs along the top (so
    the label stays inside the axes, clear of the title)."""
    ax.axhline(value, color=TARGET, lw=1.2, ls="--")
    low, high = ax.get_ylim()  # the line is in the autoscaled limits now
    if ax.get_yscale() == "log":
        low, high, value_at = math.log(low), math.log(high), math.log(value)
    else:
        value_at = value
    near_top = high > low and (value_at - low) / (high - low) > 0.85
    ax.text(
        0.99,
        value,
        f"target {text}",
        transform=ax.get_yaxis_transform(),
        color=TARGET,
        ha="right",
        va="top" if near_top else "bottom",
        fontsize=7.5,
    )


def _mark_non_finite(ax: Axes, steps: list[int], values: list[float], colour: str) -> None:
    """NaN and inf cannot be drawn: a cross at the top edge where each one was reported."""
    bad = [s for s, v in zip(steps, values) if not math.isfinite(v)]
    if bad:
        ax.plot(
            bad,
            [0.99] * len(bad),
            "x",
            color=colour,
            ms=6,
            mew=1.6,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
        ax.text(
            bad[0], 0.9, " nan/inf", color=colour, fontsize=7.5, transform=ax.get_xaxis_transform()
        )


def _wants_log(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) >= LOG_SPAN


def _finite_or_nan(values: list[float]) -> list[float]:
    return [v if math.isfinite(v) else math.nan for v in values]


def _restart_metric(run: RunData) -> str | None:
    return run.verdict.metric if run.verdict else None


def _run_title(data: ReportData, run: RunData) -> str:
    return (
        f"{data.unit} {run.run} · {_knob_text(data, run)} · {run.status} after {run.reports} "
        f"reports → {run.outcome}"
    )


def _knob_text(data: ReportData, run: RunData, limit: int = 3) -> str:
    values = data.knob_values(run)
    parts = [f"{k}={_num(v)}" for k, v in list(values.items())[:limit]]
    return ", ".join(parts) + (", …" if len(values) > limit else "")


def _num(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
