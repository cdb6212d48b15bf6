"""``rescue signatures``: the signatures, what each looks at, and the active policy's remedies."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

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
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def print_signatures(policy_name: str, console: Console | None = None) -> None:
    policy = load_policy(policy_name)
    table = Table(title=f"signatures of policy {policy.source}", show_lines=True)
    for column in ("signature", "what it looks at", "action", "thresholds", "remedies"):
        table.add_column(column, overflow="fold")
    for signature, rule in policy.rules.items():
        remedies = []
        for name in rule.remedies:
            remedy = policy.remedies[name]
            remedies.append(f"{name} ({remedy.role})" if remedy.role else name)
        table.add_row(
            signature,
            describe(signature, rule.detector),
            rule.action,
            ", ".join(f"{k}={v}" for k, v in rule.params.items()),
            " → ".join(remedies) or "-",
        )
    (console or Console()).print(table)
