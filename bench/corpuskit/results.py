"""bench/results/corpus.json (every scored case, per variant and runner, merged across
invocations: a case run again replaces its row) and corpus.md rendered from it."""

from __future__ import annotations

import json
import platform
import statistics
from datetime import date
from pathlib import Path
from typing import Any

from corpuskit.cases import load_cases
from corpuskit.evaluate import Scored

RESULTS = Path(__file__).resolve().parents[1] / "results"
RESULTS_JSON = RESULTS / "corpus.json"
RESULTS_MD = RESULTS / "corpus.md"
MAIN = "default/replay"


def _load() -> dict[str, dict[str, dict[str, Any]]]:
    if RESULTS_JSON.is_file():
        return json.loads(RESULTS_JSON.read_text())
    return {}


def store(key: str, rows: list[Scored]) -> None:
    data = _load()
    entry = data.setdefault(key, {})
    for row in rows:
        entry[row.case] = row.to_dict()
    RESULTS.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    sick = [r for r in rows if r["expect"] == "sick"]
    healthy = [r for r in rows if r["expect"] == "healthy"]
    runs = [r["runs"] for r in sick if r["right"]]
    return {
        "right": f"{sum(r['right'] for r in rows)}/{len(rows)}",
        "pct": 100 * sum(r["right"] for r in rows) / len(rows) if rows else 0.0,
        "sick": f"{sum(r['right'] for r in sick)}/{len(sick)}",
        "healthy": f"{sum(r['right'] for r in healthy)}/{len(healthy)}",
        "false": sum(r["false_restart"] for r in rows),
        "crashes": sum(bool(r["crash"]) for r in rows),
        "median_runs": statistics.median(runs) if runs else "-",
    }


def render() -> None:
    data = _load()
    current = {c.name for c in load_cases()}
    lines = [
        "# rescue on the generalisation corpus",
        "",
        f"Written by `python bench/corpus.py run` ({date.today()}, {platform.machine()}, "
        f"Python {platform.python_version()}). Right: a sick case rescued (a restart met "
        "`success`), a healthy case kept (one run, judged healthy). False restart: a healthy "
        "case restarted. Crash: the supervisor died. Median runs: runs per rescue, the first "
        "included. Cases: bench/corpus/README.md.",
        "",
        "| variant / runner | split | right | % | sick rescued | healthy kept | false restarts "
        "| crashes | median runs to a rescue |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(data, key=lambda k: (k != MAIN, k)):
        rows = [r for name, r in data[key].items() if name in current]
        for split in ("dev", "test"):
            part = [r for r in rows if r["split"] == split]
            if not part:
                continue
            f = _figures(part)
            lines.append(
                f"| {key} | {split} | {f['right']} | {f['pct']:.0f}% | {f['sick']} | "
                f"{f['healthy']} | {f['false']} | {f['crashes']} | {f['median_runs']} |"
            )
    main = [r for name, r in data.get(MAIN, {}).items() if name in current]
    if main:
        lines += ["", f"## By failure class and healthy shape ({MAIN})", ""]
        lines += ["| family | expect | dev right | test right |", "|---|---|---|---|"]
        families = sorted({(r["expect"], r["family"]) for r in main}, reverse=True)
        for expect, family in families:
            cells = []
            for split in ("dev", "test"):
                part = [r for r in main if r["family"] == family and r["split"] == split]
                cells.append(f"{sum(r['right'] for r in part)}/{len(part)}" if part else "-")
            lines.append(f"| {family} | {expect} | {cells[0]} | {cells[1]} |")
        lines += ["", f"## Every case ({MAIN})", ""]
        lines += [
            "| case | split | expect | outcome | runs | verdicts | changes |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in sorted(main, key=lambda r: (r["split"], r["case"])):
            mark = "" if r["right"] else " ✗"
            outcome = "crash" if r["crash"] else r["outcome"]
            lines.append(
                f"| {r['case']} | {r['split']} | {r['expect']} | {outcome}{mark} | {r['runs']} | "
                f"{' '.join(r['verdicts'])} | {'; '.join(r['changes'])} |"
            )
    RESULTS_MD.write_text("\n".join(lines) + "\n")
