"""Policies: which signatures are watched, with which thresholds, and which remedies follow.

A policy is a YAML file (``policies/default.yaml`` ships with rescue). A file may start from
another with ``extends: default`` and override only what it names.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rescue.detectors import RUN_SIGNATURES, Detector, detector_class
from rescue.errors import RescueError
from rescue.policy.remedies import Remedy
from rescue.yaml_loader import YamlFileError, load_yaml


class PolicyError(RescueError):
    pass


class Rule(BaseModel):
    """One entry under ``signatures:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["restart", "warn"] = "restart"
    params: dict[str, Any] = Field(default_factory=dict)
    detector: str | None = None
    remedies: list[str] = Field(default_factory=list)
    # Observations the finding must keep holding, after its detector is sure, before it
    # stops the run: for signatures that can be transient.
    confirm: int = Field(default=0, ge=0)
    # Hold a restart off while every success target is on course to be met.
    hold_on_course: bool = True
    # What the signature says about the step size (see rescue.policy.evidence): too_high,
    # too_low, neutral, or auto (read off the watched metric's course); firm: whether that may
    # bound a knob's bracket, or only steer the next move.
    side: Literal["too_high", "too_low", "neutral", "auto"] = "neutral"
    firm: bool = True


class Role(BaseModel):
    """One entry under ``roles:``: how a knob of the role relates to the step size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: Literal["larger", "smaller", "unrelated"] = "unrelated"

    @property
    def polarity(self) -> int:
        return {"larger": 1, "smaller": -1, "unrelated": 0}[self.steps]


class SearchSettings(BaseModel):
    """``search:``: how the next values are drawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sampler: Literal["tpe", "random"] = "tpe"  # inside each remedy's range
    startup: int = Field(default=2, ge=0)  # runs before TPE models the study (n_startup_trials)
    beyond_chain: bool = True  # when a signature's remedies are used up: other knobs, then all
    # Of a range, the fraction next to each end that is a value known to fail left out.
    margin: float = Field(default=0.2, ge=0.0, lt=0.5)


@dataclass
class Policy:
    source: str
    rules: dict[str, Rule]
    remedies: dict[str, Remedy]
    role_specs: dict[str, Role] = field(default_factory=dict)
    fallback: list[str] = field(default_factory=list)
    search: SearchSettings = field(default_factory=SearchSettings)

    @property
    def roles(self) -> tuple[str, ...]:
        named = {r.role for r in self.remedies.values() if r.role} | set(self.role_specs)
        return tuple(sorted(named))

    def polarity(self, role: str) -> int:
        """+1 when a larger value of a knob of ``role`` takes larger steps, -1 smaller, 0."""
        spec = self.role_specs.get(role)
        return spec.polarity if spec else 0

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


def policy_dir() -> Path:
    """Installed: the package's bundled copy; from a checkout: the top-level ``policies/``."""
    bundled = Path(str(importlib.resources.files("rescue"))) / "policies"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[3] / "policies"


def available_policies() -> list[str]:
    return sorted(p.stem for p in policy_dir().glob("*.yaml"))


def load_policy(
    name_or_path: str, relative_to: Path | None = None, _chain: tuple[str, ...] = ()
) -> Policy:
    """``default`` (a name under policies/) or a path to a YAML file."""
    raw, source = _read(name_or_path, relative_to)
    if str(Path(source).resolve()) in _chain:
        route = " -> ".join([*_chain, str(Path(source).resolve())])
        raise PolicyError(f"{source}: `extends` comes back to itself ({route})")
    base_name = raw.pop("extends", None)
    top: dict[str, Any] = {}
    if base_name is not None:
        if not isinstance(base_name, str):
            raise PolicyError(
                f"{source}: extends: expected a policy name or path, got {base_name!r}"
            )
        chain = (*_chain, str(Path(source).resolve()))
        try:
            base = load_policy(base_name, Path(source).parent, chain)
        except PolicyError as exc:
            if str(exc).startswith("policy "):  # not found: say which file asked for it
                raise PolicyError(f"{source}: extends: {exc}") from None
            raise
        rules_raw = {k: v.model_dump() for k, v in base.rules.items()}
        remedies_raw = {k: v.model_dump(exclude={"name"}) for k, v in base.remedies.items()}
        top = {
            "roles": {k: v.model_dump() for k, v in base.role_specs.items()},
            "fallback": list(base.fallback),
            "search": base.search.model_dump(),
        }
    else:
        rules_raw, remedies_raw = {}, {}
    unknown = set(raw) - {"signatures", "remedies", *TOP_KEYS}
    if unknown:
        raise PolicyError(
            f"{source}: {sorted(unknown)[0]}: expected one of "
            f"{['extends', 'signatures', 'remedies', *TOP_KEYS]}; unknown key"
        )
    for key in TOP_KEYS:
        if key in raw:
            value = raw[key]
            if key in ("roles", "search") and isinstance(value, dict):
                value = {**(top.get(key) or {}), **value}
            top[key] = value
    for key in ("signatures", "remedies"):
        if not isinstance(raw.get(key) or {}, dict):
            raise PolicyError(
                f"{source}: {key}: expected a mapping of names to entries, got "
                f"{type(raw[key]).__name__} {str(raw[key])[:80]!r}"
            )
    for key in ("signatures", "remedies"):
        for name, entry in (raw.get(key) or {}).items():
            if entry is not None and not isinstance(entry, dict):
                raise PolicyError(f"{source}: {key}.{name}: expected a mapping, got {entry!r:.80}")
    for signature, entry in (raw.get("signatures") or {}).items():
        merged = {**rules_raw.get(signature, {}), **(entry or {})}
        if entry and "params" in entry and signature in rules_raw:
            merged["params"] = {**rules_raw[signature].get("params", {}), **entry["params"]}
        rules_raw[signature] = merged
    for name, entry in (raw.get("remedies") or {}).items():
        remedies_raw[name] = entry or {}
    return _build(source, rules_raw, remedies_raw, top)


TOP_KEYS = ("roles", "fallback", "search")


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
    except YamlFileError as exc:
        raise PolicyError(f"{path}: expected a YAML text file; it is {exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: expected valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping with signatures and remedies")
    return raw, str(path)


def _build(source: str, rules_raw: dict, remedies_raw: dict, top: dict[str, Any]) -> Policy:
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
        elif signature == "misconfigured" and (rule.remedies or rule.action != "restart"):
            raise PolicyError(
                f"{source}: signatures.misconfigured: expected no remedies (a run without the "
                "metrics the cfg needs ends the rescue)"
            )
        rules[signature] = rule
    roles = {}
    for name, entry in (top.get("roles") or {}).items():
        try:
            roles[name] = Role.model_validate(entry or {})
        except ValidationError as exc:
            raise PolicyError(f"{source}: roles.{name}: {_first(exc)}") from None
    fallback = top.get("fallback") or []
    if not isinstance(fallback, list) or any(name not in remedies for name in fallback):
        raise PolicyError(
            f"{source}: fallback: expected a list of remedies defined under remedies "
            f"({', '.join(remedies)}), got {fallback!r}"
        )
    try:
        search = SearchSettings.model_validate(top.get("search") or {})
    except ValidationError as exc:
        raise PolicyError(f"{source}: search.{_first(exc)}") from None
    return Policy(source, rules, remedies, roles, list(fallback), search)


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(p) for p in error["loc"])
    return f"{loc}: {error['msg']}" if loc else error["msg"]
