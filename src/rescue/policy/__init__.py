"""The policy layer: what is watched and what is done about it (:mod:`.rules`, the YAML
policy), what a restart changes (:mod:`.remedies`), what the runs so far taught
(:mod:`.evidence`), and the move chosen from both (:mod:`.choice`)."""

from rescue.policy.choice import CannotRemedy, Choice, choose
from rescue.policy.evidence import Evidence, Observation, Side, observe, read_side
from rescue.policy.remedies import Remedy
from rescue.policy.rules import (
    Policy,
    PolicyError,
    Role,
    Rule,
    SearchSettings,
    available_policies,
    load_policy,
    policy_dir,
)

__all__ = [
    "CannotRemedy",
    "Choice",
    "Evidence",
    "Observation",
    "Policy",
    "PolicyError",
    "Remedy",
    "Role",
    "Rule",
    "SearchSettings",
    "Side",
    "available_policies",
    "choose",
    "load_policy",
    "observe",
    "policy_dir",
    "read_side",
]
