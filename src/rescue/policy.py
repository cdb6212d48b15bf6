"""Policies: which signatures are watched, with which thresholds, and which remedies follow.

A policy is a YAML file (``policies/default.yaml`` ships with rescue). A file may start from
another with ``extends: default`` and override only what it names.
"""

from __future__ import annotations

import importlib.resources
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rescue.config import Knob
from rescue.detectors import RUN_SIGNATURES, Detector, detector_class
from rescue.errors import RescueError
from rescue.findings import Finding
from rescue.remedies import Lessons, Remedy
from rescue.yaml_loader import load_yaml


class PolicyError(RescueError):
    pass


class Rule(BaseModel):
    """One entry under ``signatures:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["restart", "warn"] = "restart"
    params: dict[str, Any] = Field(default_factory=dict)
    detector: str | None = None
    remedies: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Choice:
    """The remedy chosen for a finding, with the search space of the next run."""

    remedy: Remedy
    space: dict[str, Any]


@dataclass(frozen=True)
class CannotRemedy:
    reason: str


@dataclass
class Policy:
    source: str
    rules: dict[str, Rule]
    remedies: dict[str, Remedy]
    skipped: list[str] = field(default_factory=list)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted({r.role for r in self.remedies.values() if r.role}))

    def detectors(self) -> list[Detector]:
        """Fresh detectors for one run, in order of precedence."""
        return [
            detector_class(signature, rule.detector)(**rule.params)
            for signature, rule in self.rules.items()
            if signature not in RUN_SIGNATURES
        ]

    def action(self, signature: str) -> Literal["restart", "warn"]:
        rule = self.rules.get(signature)
        return rule.action if rule else "restart"

    def precedence(self, signature: str) -> int:
        order = list(self.rules)
        return order.index(signature) if signature in order else len(order)

    def choose(
        self,
        finding: Finding,
        tried: Counter[tuple[str, str]],
        knobs: dict[str, Knob],
        config: dict[str, Any],
        lessons: Lessons,
    ) -> Choice | CannotRemedy:
        """The first remedy in the signature's list that is not used up and can change a knob."""
        rule = self.rules.get(finding.signature)
        names = rule.remedies if rule else []
        if not names:
            return CannotRemedy(f"the policy has no remedy for {finding.signature}")
        why_not = []
        for name in names:
            remedy = self.remedies[name]
            if tried[(finding.signature, name)] >= remedy.tries:
                why_not.append(f"{name} tried {remedy.tries}x already")
                continue
            if remedy.role is None:
                return Choice(remedy, {})
            if not any(k.role == remedy.role for k in knobs.values()):
                why_not.append(f"no knob with role {remedy.role} for {name}")
                continue
            space = remedy.search_space(knobs, config, lessons)
            if not space:
                why_not.append(f"{name} has no value left to try for role {remedy.role}")
                continue
            return Choice(remedy, space)
        return CannotRemedy(f"cannot remedy {finding.signature}: " + "; ".join(why_not))


def policy_dir() -> Path:
    """Installed: the package's bundled copy; from a checkout: the top-level ``policies/``."""
    bundled = Path(str(importlib.resources.files("rescue"))) / "policies"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[2] / "policies"


def available_policies() -> list[str]:
    return sorted(p.stem for p in policy_dir().glob("*.yaml"))


def load_policy(name_or_path: str, relative_to: Path | None = None) -> Policy:
    """``default`` (a name under policies/) or a path to a YAML file."""
    raw, source = _read(name_or_path, relative_to)
    base_name = raw.pop("extends", None)
    if base_name is not None:
        base = load_policy(base_name, Path(source).parent)
        rules_raw = {k: v.model_dump() for k, v in base.rules.items()}
        remedies_raw = {k: v.model_dump(exclude={"name"}) for k, v in base.remedies.items()}
    else:
        rules_raw, remedies_raw = {}, {}
    unknown = set(raw) - {"signatures", "remedies"}
    if unknown:
        raise PolicyError(
            f"{source}: {sorted(unknown)[0]}: expected one of ['extends', 'signatures', "
            "'remedies']; unknown key"
        )
    for signature, entry in (raw.get("signatures") or {}).items():
        merged = {**rules_raw.get(signature, {}), **(entry or {})}
        if entry and "params" in entry and signature in rules_raw:
            merged["params"] = {**rules_raw[signature].get("params", {}), **entry["params"]}
        rules_raw[signature] = merged
    for name, entry in (raw.get("remedies") or {}).items():
        remedies_raw[name] = entry or {}
    return _build(source, rules_raw, remedies_raw)


def _read(name_or_path: str, relative_to: Path | None) -> tuple[dict[str, Any], str]:
    candidates = [Path(name_or_path)]
    if relative_to is not None:
        candidates.insert(0, relative_to / name_or_path)
    if not name_or_path.endswith((".yaml", ".yml")):
        candidates.append(policy_dir() / f"{name_or_path}.yaml")
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise PolicyError(
            f"policy {name_or_path!r}: expected a policy name ({', '.join(available_policies())})"
            " or a path to a YAML file"
        )
    try:
        raw = load_yaml(path) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: expected valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping with signatures and remedies")
    return raw, str(path)


def _build(source: str, rules_raw: dict, remedies_raw: dict) -> Policy:
    remedies = {}
    for name, entry in remedies_raw.items():
        try:
            remedies[name] = Remedy.model_validate({**entry, "name": name})
        except ValidationError as exc:
            raise PolicyError(f"{source}: remedies.{name}: {_first(exc)}") from None
    rules = {}
    for signature, entry in rules_raw.items():
        try:
            rule = Rule.model_validate(entry)
        except ValidationError as exc:
            raise PolicyError(f"{source}: signatures.{signature}: {_first(exc)}") from None
        for remedy in rule.remedies:
            if remedy not in remedies:
                raise PolicyError(
                    f"{source}: signatures.{signature}.remedies: expected a remedy defined under "
                    f"remedies ({', '.join(remedies)}), got {remedy!r}"
                )
        if signature not in RUN_SIGNATURES:
            try:
                detector_class(signature, rule.detector)(**rule.params)
            except (KeyError, TypeError, ValueError, ImportError, AttributeError) as exc:
                raise PolicyError(f"{source}: signatures.{signature}: {exc}") from None
        elif signature == "stall" and set(rule.params) - {"seconds"}:
            raise PolicyError(f"{source}: signatures.stall.params: expected only `seconds`")
        rules[signature] = rule
    return Policy(source=source, rules=rules, remedies=remedies)


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(p) for p in error["loc"])
    return f"{loc}: {error['msg']}" if loc else error["msg"]
