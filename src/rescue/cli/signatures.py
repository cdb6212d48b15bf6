"""``rescue signatures``: the signatures, what each looks at, and the active policy's remedies."""

from __future__ import annotations

import re
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rescue.detectors import RUN_SIGNATURES, detector_class
from rescue.policy import load_policy

RUN_SIGNATURE_TEXT = {
    "crash": "The training function raised; its traceback is kept in the report.",
    "stall": "No report for longer than `seconds`.",
    "misconfigured": "The run ended without the metrics the cfg needs (no report, a success "
    "metric never reported, a command.metrics pattern that never matched): the rescue ends "
    "and says which.",
}


def describe(signature: str, detector: str | None = None) -> str:
    if signature in RUN_SIGNATURES:
        return RUN_SIGNATURE_TEXT[signature]
    doc = detector_class(signature, detector).__doc__ or ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.replace("``", "").split())  # one line, no reST literals


def print_signatures(policy_name: str, console: Console | None = None) -> None:
    """A table on a terminal; piped (``| less``, a file), one block per signature, so that no
    name is wrapped mid-word at an assumed width."""
    policy = load_policy(policy_name)
    rows = []
    for signature, rule in policy.rules.items():
        remedies = []
        for name in rule.remedies:
            remedy = policy.remedies[name]
            remedies.append(f"{name} ({remedy.role})" if remedy.role else name)
        rows.append(
            (
                signature,
                describe(signature, rule.detector),
                rule.action,
                ", ".join(f"{k}={v}" for k, v in rule.params.items()),
                " → ".join(remedies) or "-",
            )
        )
    console = console or Console()
    if not console.is_terminal:
        lines = [f"signatures of policy {policy.source}", ""]
        for signature, what, action, thresholds, remedies in rows:
            lines += [f"{signature} ({action})", f"  looks at: {what}"]
            lines += [f"  thresholds: {thresholds}"] if thresholds else []
            lines += [f"  remedies: {remedies}", ""]
        sys.stdout.write(re.sub(r"\n+$", "\n", "\n".join(lines)))
        return
    table = Table(title=f"signatures of policy {policy.source}", show_lines=True)
    for column in ("signature", "what it looks at", "action", "thresholds", "remedies"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # user policy strings, as they are
    console.print(table)
