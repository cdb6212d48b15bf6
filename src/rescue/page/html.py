"""``report.html``: one self-contained page (inline CSS, inline SVG plots, no scripts, no
external URL) that says at a glance what failed, where, and what was changed.

Top to bottom: the outcome and its one-line summary; the lineage of runs (run → finding →
remedy → next run) with each run's knob values; warnings; the key metric across runs; then
one section per run with its findings, remedy and every metric plotted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from html import escape
from typing import Any

from rescue import layout
from rescue.detectors.findings import Finding
from rescue.page.data import ReportData, RunData, SweepData, outcome_label
from rescue.page.plots import run_colour

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f6f8;color:#263238;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1400px;margin:0 auto;padding:20px 28px 40px}
h2{font-size:17px;margin:28px 0 10px;color:#37474f}
h3{font-size:15px;margin:0}
code,.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
.outcome{border-radius:10px;padding:18px 22px;color:#fff;display:flex;gap:18px;
align-items:center;flex-wrap:wrap}
.outcome.good{background:#2e7d32}.outcome.bad{background:#c62828}.outcome.cut{background:#e08a00}
.badge{font-size:26px;font-weight:800;letter-spacing:.04em;text-transform:uppercase}
.summary{font-size:18px;flex:1;min-width:300px}
.meta{color:#607d8b;font-size:12.5px;margin:8px 2px 0}
.flow{display:flex;align-items:stretch;gap:0;flex-wrap:wrap;row-gap:12px}
.card{background:#fff;border-radius:9px;padding:12px 14px;min-width:210px;max-width:330px;
border-top:5px solid #90a4ae;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card.sick{border-top-color:#c62828}.card.ok{border-top-color:#2e7d32}
.card.cut{border-top-color:#e08a00}
.card .head{display:flex;justify-content:space-between;align-items:baseline;gap:10px}
.pill{font-size:11.5px;font-weight:700;padding:1px 8px;border-radius:9px;color:#fff;
background:#78909c;white-space:nowrap}
.pill.sick{background:#c62828}.pill.ok{background:#2e7d32}.pill.cut{background:#e08a00}
.knobs{margin:8px 0 6px}
.knobs div{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
.changed{background:#fff3cd;border-radius:4px;padding:0 4px;font-weight:700}
.old{color:#90a4ae;text-decoration:line-through;font-weight:400}
.small{font-size:12.5px;color:#607d8b}
.verdict{margin-top:6px;font-weight:700}
.verdict.sick{color:#c62828}.verdict.ok{color:#2e7d32}.verdict.cut{color:#e08a00}
.link{display:flex;flex-direction:column;justify-content:center;align-items:center;
padding:0 8px;min-width:170px;max-width:250px;text-align:center}
.link .arrow{font-size:28px;color:#90a4ae;line-height:1}
.link .what{font-size:12.5px;color:#c62828;font-weight:700}
.link .fix{font-size:12.5px;background:#e3f2fd;color:#0d47a1;border-radius:6px;
padding:3px 8px;margin-top:4px}
.link.end .fix{background:#ffebee;color:#b71c1c}
.targets{margin-top:6px;font-size:12.5px}
.met{color:#2e7d32;font-weight:700}.missed{color:#c62828;font-weight:700}
ul.warnings{background:#fff8e1;border-left:5px solid #e08a00;border-radius:6px;
margin:0;padding:10px 14px 10px 34px}
ul.warnings li{margin:3px 0}
.panel{background:#fff;border-radius:9px;padding:14px 16px;margin-bottom:16px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
.run{border-left:6px solid #90a4ae}
svg.plot{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceff1;vertical-align:top}
th{color:#607d8b;font-weight:600;font-size:12px}
td.sig{font-weight:700;white-space:nowrap}
details{margin:6px 0}summary{cursor:pointer;color:#546e7a}
pre{background:#263238;color:#eceff1;padding:10px;border-radius:6px;overflow:auto;
font-size:12px;max-height:320px}
footer{color:#90a4ae;font-size:12px;margin-top:24px}
"""


def render_html(data: ReportData, overview_svg: str | None, run_svgs: Mapping[int, str]) -> str:
    """The whole page; ``overview_svg`` and ``run_svgs`` (by run number) are inline ``<svg>``
    elements, and a missing one just leaves its plot out."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rescue report · {escape(data.out.name)} · {outcome_label(data.outcome)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        _header(data),
        *(
            [_leaderboard(data, data.sweep)]
            if data.sweep is not None
            else ["<h2>What happened</h2>", _lineage(data)]
        ),
        _warnings(data),
    ]
    if overview_svg:
        parts += [f'<h2>Across {data.unit}s</h2><div class="panel">', overview_svg, "</div>"]
    for run in data.runs:
        parts.append(_run_section(data, run, run_svgs.get(run.run)))
    parts += [_final_config(data), _footer(data), "</main></body></html>"]
    return "\n".join(p for p in parts if p)


# --- sections --------------------------------------------------------------------------------


def _header(data: ReportData) -> str:
    tone = {"healthy": "good", "rescued": "good", "interrupted": "cut"}.get(data.outcome, "bad")
    meta = [
        f"{len(data.runs)} {data.unit}{'s' if len(data.runs) != 1 else ''}",
        f"{data.total_reports} reports",
    ]
    if data.script:
        meta.append(f"script <code>{escape(data.script)}</code>")
    if data.config_file:
        meta.append(f"config <code>{escape(data.config_file)}</code>")
    return (
        f'<header class="outcome {tone}"><div class="badge">'
        f"{escape(outcome_label(data.outcome))}</div>"
        f'<div class="summary">{escape(data.summary or "no summary was recorded")}</div></header>'
        f'<div class="meta">{" · ".join(meta)}</div>'
    )


def _leaderboard(data: ReportData, sweep: SweepData) -> str:
    """A sweep's trials as report.json ranked them, and how many ended with each signature."""
    rows = []
    for place, row in enumerate(sweep.leaderboard, start=1):
        trial = row.get("trial")
        status = str(row.get("signature") or row.get("status") or "?")
        tone = "sick" if row.get("signature") else "ok"
        if (
            not row.get("signature")
            and row.get("status") == "healthy"
            and not row.get("met_success")
        ):
            status, tone = "missed target", "cut"
        run = next((r for r in data.runs if r.run == trial), None)
        if run is not None and run.rescue_of is not None:
            status += f" (rescue of trial {run.rescue_of})"
        name = f'<a href="#{layout.run_name(trial)}">{trial}</a>' if isinstance(trial, int) else "?"
        objective = row.get("objective")
        rows.append(
            f"<tr><td>{place}</td><td>{name}</td>"
            f"<td class='mono'>{escape(_compact(row.get('params') or {}))}</td>"
            f"<td>{escape('' if objective is None else _fmt(_as_number(objective)))}</td>"
            f"<td>{escape(str(row.get('reports', '')))}</td>"
            f"<td class='verdict {tone}'>{escape(status)}</td></tr>"
        )
    counts = ", ".join(f"{escape(str(k))} {escape(str(v))}" for k, v in sweep.signatures.items())
    return (
        f"<h2>Leaderboard · {escape(sweep.describe())}</h2>"
        "<table><tr><th>rank</th><th>trial</th><th>params</th><th>objective</th>"
        f"<th>reports</th><th>status</th></tr>{''.join(rows)}</table>"
        + (f"<p class='small'>trials per signature: {counts}</p>" if counts else "")
    )


def _lineage(data: ReportData) -> str:
    """Cards for the runs, joined by what was found and what was changed."""
    items = []
    previous: RunData | None = None
    for run in data.runs:
        if previous is not None:
            items.append(_link(previous))
        items.append(_card(data, run, previous))
        previous = run
    last = data.runs[-1]
    if last.verdict is not None and not last.changes:
        if data.interrupted:
            fix = "rescue interrupted"
        elif last.remedy is None:
            fix = "no remedy applied"
        else:  # chosen, but the budget ended the rescue before another run
            fix = f"{escape(str(last.remedy.get('name', '?')))} chosen, no run left"
        items.append(
            f'<div class="link end"><div class="what">{escape(last.verdict.signature)}</div>'
            f'<div class="arrow">→</div><div class="fix">{fix}</div></div>'
        )
    return f'<div class="flow">{"".join(items)}</div>'


def _card(data: ReportData, run: RunData, previous: RunData | None) -> str:
    tone = _tone(run)
    knobs = []
    changed = previous.changes if previous is not None else {}
    for name, value in data.knob_values(run).items():
        if name in changed:
            old = _fmt(changed[name][0])
            knobs.append(
                f'<div><span class="changed">{escape(name)} = '
                f'<span class="old">{escape(old)}</span> {escape(_fmt(value))}</span></div>'
            )
        else:
            knobs.append(f"<div>{escape(name)} = {escape(_fmt(value))}</div>")
    if not knobs:
        knobs.append('<div class="small">config not recorded</div>')
    seconds = f" · {run.seconds:.1f} s" if isinstance(run.seconds, (int, float)) else ""
    return (
        f'<div class="card {tone}"><div class="head"><h3>run {run.run}</h3>'
        f'<span class="pill {tone}">{escape(run.status)}</span></div>'
        f'<div class="knobs">{"".join(knobs)}</div>'
        f'<div class="small">{run.reports} reports{seconds}</div>'
        f"{_targets(data, run)}"
        f'<div class="verdict {tone}">{escape(run.outcome)}</div></div>'
    )


def _link(run: RunData) -> str:
    verdict = run.verdict
    what = "finding not recorded"
    if verdict is not None:
        where = f" on {verdict.metric}" if verdict.metric else ""
        what = f"{verdict.signature}{where} at report {verdict.step}"
    remedy = run.remedy or {}
    changes = ", ".join(f"{k} {_fmt(a)} → {_fmt(b)}" for k, (a, b) in run.changes.items())
    fix = escape(str(remedy.get("name", "restart")))
    if changes:
        fix += f": {escape(changes)}"
    return (
        f'<div class="link"><div class="what">{escape(what)}</div>'
        f'<div class="arrow">→</div><div class="fix">{fix}</div>'
        f'<div class="arrow">→</div></div>'
    )


def _targets(data: ReportData, run: RunData) -> str:
    lines = []
    for target in data.success:
        value = run.final_metrics.get(target.metric)
        if value is None:
            continue
        value = _as_number(value)
        met = target.met_by(value)
        mark = {True: '<span class="met">✓</span>', False: '<span class="missed">✗</span>'}
        lines.append(
            f"<div>{mark.get(met, '')} {escape(target.metric)} {escape(_fmt(value))} "
            f'<span class="small">(target {escape(target.describe())})</span></div>'
        )
    return f'<div class="targets">{"".join(lines)}</div>' if lines else ""


def _warnings(data: ReportData) -> str:
    items = []
    if data.interrupted:
        items.append(
            "<li><b>The rescue was interrupted</b>: this page is built from what was saved; the "
            "last run may be incomplete.</li>"
        )
    for run in data.runs:
        for finding in run.warnings:
            where = f" on <code>{escape(finding.metric)}</code>" if finding.metric else ""
            items.append(
                f"<li>{data.unit} {run.run} · <b>{escape(finding.signature)}</b>{where} at report "
                f"{finding.step}: {escape(finding.reason)} <span class='small'>(warning only: "
                f"no restart)</span></li>"
            )
    items += [f"<li>{escape(note)}</li>" for note in data.notes]
    if not items:
        return ""
    return f'<h2>Warnings</h2><ul class="warnings">{"".join(items)}</ul>'


def _run_section(data: ReportData, run: RunData, svg: str | None) -> str:
    colour = run_colour(run.run)
    parts = [
        f'<section class="panel run" id="{layout.run_name(run.run)}" '
        f'style="border-left-color:{colour}">',
        f"<h2 style='margin-top:0'>{data.unit} {run.run} · {escape(run.status)} after "
        f"{run.reports} "
        f"reports → <span class='verdict {_tone(run)}'>{escape(run.outcome)}</span></h2>",
    ]
    if run.config:
        parts.append(f'<div class="small mono">{escape(_config_line(data, run))}</div>')
    if run.findings:
        parts.append(_findings_table(run.findings, restarted=run.remedy is not None))
    if run.remedy:
        parts.append(_remedy_line(run.remedy, run.changes))
    if run.error:
        parts.append(f"<details><summary>error</summary><pre>{escape(run.error)}</pre></details>")
    if svg:
        parts.append(svg)
    elif not run.history:
        parts.append('<p class="small">no metrics were recorded for this run</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _findings_table(findings: list[Finding], restarted: bool) -> str:
    rows = []
    for f in findings:
        tone = "sick" if f.action == "restart" else "cut"
        # A verdict the policy had no remedy for (a crash, say) ended the rescue there.
        action = f.action if f.action != "restart" or restarted else "no remedy"
        onset = f.onset if f.onset is not None else f.step
        evidence = {k: v for k, v in f.evidence.items() if k != "traceback"}
        rows.append(
            f"<tr><td class='sig verdict {tone}'>{escape(f.signature)}</td>"
            f"<td><code>{escape(f.metric or '–')}</code></td><td>{onset}</td><td>{f.step}</td>"
            f"<td>{escape(action)}</td><td>{escape(f.reason)}"
            + (f"<div class='small mono'>{escape(_compact(evidence))}</div>" if evidence else "")
            + "</td></tr>"
        )
    return (
        "<table><tr><th>finding</th><th>metric</th><th>onset</th><th>confirmed</th>"
        f"<th>action</th><th>reason · evidence</th></tr>{''.join(rows)}</table>"
    )


def _remedy_line(remedy: dict[str, Any], changes: dict[str, list[Any]]) -> str:
    what = ", ".join(f"{k} {_fmt(a)} → {_fmt(b)}" for k, (a, b) in changes.items())
    space = remedy.get("search_space") or {}
    searched = "; ".join(f"{k} {_domain(v)}" for k, v in space.items())
    detail = f" <span class='small'>(Optuna searched {escape(searched)})</span>" if space else ""
    return (
        f"<p><b>remedy</b> <code>{escape(str(remedy.get('name', '?')))}</code> for "
        f"{escape(str(remedy.get('for', '?')))}: <span class='changed'>"
        f"{escape(what or 'not applied: no run followed')}</span>{detail}</p>"
    )


def _final_config(data: ReportData) -> str:
    if not data.final_config:
        return ""
    title = "Final config"
    if data.sweep is not None:
        best = data.sweep.best_trial
        title = "Best config" + (f" (trial {best})" if best is not None else "")
    return f"<h2>{title}</h2><div class='panel mono'>{escape(_compact(data.final_config))}</div>"


def _footer(data: ReportData) -> str:
    return (
        f"<footer>rendered {time.strftime('%Y-%m-%d %H:%M:%S')} from <code>"
        f"{escape(str(data.out))}</code> · plots also in <code>plots/</code> · re-render with "
        f"<code>rescue report {escape(str(data.out))}</code></footer>"
    )


# --- words -----------------------------------------------------------------------------------


def _tone(run: RunData) -> str:
    if run.verdict is not None or run.status == "crashed":
        return "sick"
    if run.status == "completed":
        return "ok" if run.met_success or not run.recorded else "sick"
    return "cut"


def _config_line(data: ReportData, run: RunData) -> str:
    knobs = set(data.knobs)
    others = {k: v for k, v in run.config.items() if k not in knobs}
    shown = ", ".join(f"{k}={_fmt(v)}" for k, v in data.knob_values(run).items())
    rest = ", ".join(f"{k}={_fmt(v)}" for k, v in others.items())
    return f"knobs: {shown or '–'}" + (f" · params: {rest}" if rest else "")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _domain(text: Any) -> str:
    """An Optuna distribution's repr, as saved in report.json, in a few words."""
    text = str(text)
    fields = dict(re.findall(r"(\w+)=([^,()]+)", text))
    if "low" in fields and "high" in fields:
        scale = " log-uniform" if fields.get("log") == "True" else ""
        low, high = (_fmt(_maybe_float(fields[k])) for k in ("low", "high"))
        return f"in [{low}, {high}]{scale}"
    choices = re.search(r"choices=\(([^)]*)\)", text)
    if choices:
        return "one of " + choices.group(1).rstrip(",").replace("'", "")
    return text


def _maybe_float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _as_number(value: Any) -> Any:
    """report.json writes non-finite numbers as strings."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def _compact(value: Any, limit: int = 400) -> str:
    text = json.dumps(_rounded(value), default=str, separators=(", ", ": "))
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace('"', "")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value
