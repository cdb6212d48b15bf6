"""The generalisation corpus: is rescue right on failures nobody here tuned it on?

    python bench/corpus.py list                        # the cases, their split and ground truth
    python bench/corpus.py measure [CASE ...]          # the ground truth: direct runs on a grid
    python bench/corpus.py run [--split dev] [--runner replay|ray] [CASE ...]
                                                       # rescue on every case; writes results

Cases live in bench/corpus/cases/ (see bench/corpuskit/cases.py for the format and
bench/corpus/README.md for the split and where each case comes from).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpuskit.cases import Case, load_cases  # noqa: E402
from corpuskit.evaluate import Scored, score_ray, score_replay, summarize  # noqa: E402
from corpuskit.recording import final_values, met_success, record  # noqa: E402
from corpuskit.results import RESULTS_JSON, render, store  # noqa: E402


def measure(case: Case, use_cache: bool = True) -> dict[str, Any]:
    """The shipped setting, then each grid value (one knob at a time, the rest as shipped)."""

    def one(params: dict[str, Any]) -> dict[str, Any]:
        rec = record(case, params, use_cache=use_cache)
        return {
            "met": met_success(case, rec),
            "status": rec.status,
            "reports": len(rec.reports),
            "seconds": rec.seconds,
            "final": final_values(case, rec),
        }

    shipped = one(dict(case.cfg.params))
    grid: dict[str, list[dict[str, Any]]] = {}
    fixing: dict[str, list[Any] | None] = {}
    for knob, values in case.grid.items():
        rows = []
        for value in values:
            row = one({**case.cfg.params, knob: value})
            rows.append({"value": value, **row})
        grid[knob] = rows
        met = [r["value"] for r in rows if r["met"]]
        fixing[knob] = met or None
    if case.expect == "sick":
        ok = not shipped["met"] and any(v for v in fixing.values())
    else:
        ok = shipped["met"]
    result = {
        "expect": case.expect,
        "ground_truth_ok": ok,
        "shipped": shipped,
        "grid": grid,
        "fixing_values": fixing,
    }
    case.measured_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def _list(cases: list[Case]) -> None:
    for case in cases:
        m = case.measured()
        truth = "unmeasured" if m is None else ("ok" if m["ground_truth_ok"] else "WRONG")
        print(f"{case.name:40s} {case.split:5s} {case.expect:8s} {case.family:24s} {truth}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list")
    p_list.add_argument("--split", choices=("dev", "test"))
    p_measure = sub.add_parser("measure")
    p_measure.add_argument("cases", nargs="*")
    p_measure.add_argument("--no-cache", action="store_true")
    p_measure.add_argument("--jobs", type=int, default=2)
    p_run = sub.add_parser("run")
    p_run.add_argument("cases", nargs="*")
    p_run.add_argument("--split", choices=("dev", "test"))
    p_run.add_argument("--runner", choices=("replay", "ray"), default="replay")
    p_run.add_argument("--jobs", type=int, default=2)
    p_run.add_argument("--seed", type=int, default=0)
    p_run.add_argument(
        "--variant",
        default="default",
        help="default, random (uniform draws from the same ranges), chain_only (no fallback), "
        "or a name for another rescue given with PYTHONPATH (e.g. the previous release)",
    )
    p_run.add_argument("--no-store", action="store_true", help="print only")
    args = parser.parse_args(argv)

    if args.command == "list":
        _list(load_cases(split=args.split))
        return 0
    if args.command == "run":
        return _run(args)
    cases = load_cases(args.cases or None)

    def run(case: Case) -> str:
        m = measure(case, use_cache=not args.no_cache)
        shipped = m["shipped"]
        verdict = "ok" if m["ground_truth_ok"] else "WRONG"
        return (
            f"{case.name}: {verdict} (shipped {'met' if shipped['met'] else 'missed'} "
            f"{shipped['final']}, {shipped['status']}, {shipped['seconds']} s; "
            f"fixing {m['fixing_values']})"
        )

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for line in pool.map(run, cases):
            print(line, flush=True)
    return 0


def _run(args: argparse.Namespace) -> int:
    cases = [c for c in load_cases(args.cases or None, args.split) if _usable(c)]
    scorer = score_replay if args.runner == "replay" else score_ray

    if args.runner == "ray" and args.variant != "default":
        raise SystemExit("--runner ray runs the shipped policy only (--variant default)")

    def one(case: Case) -> Scored:
        return scorer(case, seed=args.seed, variant=args.variant)

    rows: list[Scored] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(one, cases):
            rows.append(row)
            mark = "ok " if row.right else "BAD"
            print(
                f"{mark} {row.case:40s} {row.split:4s} {row.outcome:11s} runs {row.runs} "
                f"{' '.join(row.verdicts)}  {'; '.join(row.changes)}"
                + (f"\n    crash: {row.crash.strip().splitlines()[-1]}" if row.crash else ""),
                flush=True,
            )
    for split in ("dev", "test"):
        part = [r for r in rows if r.split == split]
        if part:
            print(split, summarize(part))
    if not args.no_store:
        store(f"{args.variant}/{args.runner}", rows)
        render()
        print(f"results: {RESULTS_JSON} and corpus.md")
    return 0


def _usable(case: Case) -> bool:
    measured = case.measured()
    if measured is None or not measured["ground_truth_ok"]:
        print(f"skipped {case.name}: its ground truth is not measured ok", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
