"""``cfg.yaml``: parsing and validation, with errors that name the file, the key and what was
expected, before anything runs."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rescue.errors import ConfigError
from rescue.kinds import USER_KINDS
from rescue.yaml_loader import YamlFileError, load_yaml

BUILTIN_ROLES = (
    "learning_rate",
    "init",
    "normalization",
    "resample_every",
    "grad_clip",
    "warmup",
    "loss_weight",
    "momentum",
    "batch_size",
    "weight_decay",
    "dropout",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Domain(_Strict):
    """The values a param may take: ``low``/``high``/``log`` for a number, ``choices`` for a
    category."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @model_validator(mode="after")
    def _one_domain(self) -> Domain:
        numeric = self.low is not None or self.high is not None
        if numeric and self.choices is not None:
            raise ValueError("either low/high (a number range) or choices, not both")
        if not numeric and self.choices is None:
            raise ValueError("a domain: low and high for a number, or choices for a category")
        if numeric:
            if self.low is None or self.high is None:
                raise ValueError("both low and high")
            if not (math.isfinite(self.low) and math.isfinite(self.high)):
                raise ValueError(f"finite low and high (got low={self.low}, high={self.high})")
            if not self.low < self.high:
                raise ValueError(f"low < high (got low={self.low}, high={self.high})")
            if self.log and self.low <= 0:
                raise ValueError("low > 0 for a log domain")
        elif len(self.choices or ()) < 2:
            raise ValueError("at least two choices")
        return self

    @property
    def is_categorical(self) -> bool:
        return self.choices is not None

    def contains(self, value: Any) -> bool:
        if self.is_categorical:
            return value in self.choices
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def describe(self) -> str:
        if self.is_categorical:
            return f"one of {list(self.choices)}"
        return f"a number in [{self.low:g}, {self.high:g}]" + (" (log scale)" if self.log else "")


class Knob(Domain):
    """A param rescue may change: its role (what remedies act on) and its domain."""

    role: str


class MetricSpec(_Strict):
    kind: Literal[USER_KINDS]  # type: ignore[valid-type]


class Target(_Strict):
    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        if (self.below is None) == (self.above is None):
            raise ValueError("exactly one of below or above")
        value = self.below if self.below is not None else self.above
        if not math.isfinite(value):
            raise ValueError(f"a finite number to compare with (got {value})")
        return self

    def met_by(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value < self.below if self.below is not None else value > self.above

    def describe(self) -> str:
        return f"< {self.below:g}" if self.below is not None else f"> {self.above:g}"


class Budget(_Strict):
    restarts: int = Field(default=5, ge=0)
    seconds: float | None = Field(default=None, gt=0)
    # A run's length in reports, where known: a run ends (completed) at this many reports, as
    # Ray Tune's stop on training_iteration, and the terminal shows progress toward it.
    reports_per_run: int | None = Field(default=None, gt=0)


class RayOptions(_Strict):
    address: str | None = None
    cpus_per_run: float = Field(default=1, gt=0)
    gpus_per_run: float = Field(default=0, ge=0)
    # Ray Tune's results and checkpoints: a folder every node reaches, or any URI Ray Tune's
    # storage accepts (s3://, gs://, file://...). Default: OUTDIR/ray.
    storage_path: str | None = None


class TensorBoardSource(_Strict):
    """Metrics read from the TensorBoard event files the script writes."""

    logdir: str  # where it writes them; {param} stands for the run's value of a param
    tags: dict[str, str] = Field(min_length=1)  # metric name -> the tag the script logs


class CommandOptions(_Strict):
    """How to run a script that has no ``train(config)``: as a process, params as flags."""

    args: tuple[str, ...] | None = None  # a template such as ["--learning-rate", "{lr}"]
    metrics: dict[str, str] | None = None  # a regular expression per metric (one group)
    tensorboard: TensorBoardSource | None = None


class MlflowTarget(_Strict):
    tracking_uri: str  # sqlite:///mlflow.db, http://host:5000, databricks, ...
    experiment: str = "rescue"


class TensorBoardTarget(_Strict):
    logdir: str  # one folder per run below it


class MirrorOptions(_Strict):
    """Where each run's metrics, findings and remedies are copied as they happen."""

    mlflow: MlflowTarget | None = None
    tensorboard: TensorBoardTarget | None = None


class RescueConfig(_Strict):
    params: dict[str, Any]
    knobs: dict[str, Knob]
    search: dict[str, Domain] = Field(default_factory=dict)  # more params a sweep samples
    metrics: dict[str, MetricSpec] = Field(default_factory=dict)
    success: dict[str, Target] = Field(default_factory=dict)
    budget: Budget = Field(default_factory=Budget)
    policy: str = "default"
    ray: RayOptions = Field(default_factory=RayOptions)
    command: CommandOptions = Field(default_factory=CommandOptions)
    mirror: MirrorOptions = Field(default_factory=MirrorOptions)

    @property
    def metric_kinds(self) -> dict[str, str]:
        return {name: spec.kind for name, spec in self.metrics.items()}

    def knob_values(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        source = self.params if config is None else config
        return {name: source[name] for name in self.knobs}


def read_config(path: str | Path) -> Any:
    """The YAML document in ``path``, unvalidated; a file that is not one is a
    :class:`ConfigError`."""
    file = str(path)
    try:
        return load_yaml(path)
    except FileNotFoundError:
        raise ConfigError(file, "", "an existing YAML file") from None
    except YamlFileError as exc:
        raise ConfigError(file, "", f"a YAML text file; it is {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"valid YAML ({exc})") from None


def load_config(
    path: str | Path, roles: tuple[str, ...] = BUILTIN_ROLES, raw: Any = None
) -> RescueConfig:
    """Read (unless ``raw``, what :func:`read_config` returned, is given) and validate
    ``path``; every problem is a :class:`ConfigError`.

    ``roles`` are the knob roles allowed: the built-in ones and any the policy's remedies use.
    """
    file = str(path)
    if raw is None:
        raw = read_config(path)
    if not isinstance(raw, dict):
        raise ConfigError(file, "", "a mapping with params and knobs at the top level", raw)
    try:
        config = RescueConfig.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(file, exc) from None
    check_knobs(config, file, roles)
    check_search(config, file)
    check_command(config, file)
    return config


def check_command(config: RescueConfig, file: str) -> None:
    from rescue.worker.command_line import CommandError, check_template
    from rescue.worker.output_metrics import compile_patterns

    try:
        if config.command.args is not None:
            check_template(config.command.args, config.params)
    except CommandError as exc:
        raise ConfigError(file, "command.args", str(exc)) from None
    for name, pattern in (config.command.metrics or {}).items():
        try:
            compile_patterns({name: pattern})
        except ValueError as exc:
            raise ConfigError(file, f"command.metrics.{name}", str(exc), pattern) from None
    source = config.command.tensorboard
    if source is not None:
        try:
            check_template([source.logdir], config.params)
        except (CommandError, ValueError) as exc:
            raise ConfigError(file, "command.tensorboard.logdir", str(exc)) from None
        from rescue.worker.tensorboard_reader import check_installed

        try:
            check_installed()
        except ImportError as exc:
            raise ConfigError(file, "command.tensorboard", f"its reader ({exc})") from None


def check_knobs(config: RescueConfig, file: str, roles: tuple[str, ...]) -> None:
    for name, knob in config.knobs.items():
        if knob.role not in roles:
            raise ConfigError(file, f"knobs.{name}.role", f"one of {list(roles)}", knob.role)
        if name not in config.params:
            raise ConfigError(file, f"knobs.{name}", "a knob that names a key of params")
        value = config.params[name]
        if not knob.contains(value):
            raise ConfigError(
                file, f"params.{name}", f"{knob.describe()} (the domain of knob {name})", value
            )


def check_search(config: RescueConfig, file: str) -> None:
    """``search:`` params are sampled by ``rescue sweep`` only; each names a param, and the
    param's value (the default) lies in its domain, as for knobs."""
    for name, domain in config.search.items():
        if name in config.knobs:
            raise ConfigError(file, f"search.{name}", "a param that is not also a knob")
        if name not in config.params:
            raise ConfigError(file, f"search.{name}", "a search entry that names a key of params")
        value = config.params[name]
        if not domain.contains(value):
            raise ConfigError(
                file, f"params.{name}", f"{domain.describe()} (the domain of search.{name})", value
            )


_FIELD_NAMES = {
    (): RescueConfig,
    ("budget",): Budget,
    ("ray",): RayOptions,
    ("command",): CommandOptions,
}


def _config_error(file: str, exc: ValidationError) -> ConfigError:
    # An unknown key is reported first: a misspelt key also makes the right one "missing".
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc = tuple(str(part) for part in error["loc"])
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        parent = _FIELD_NAMES.get(loc[:-1])
        if parent is None and len(loc) == 3 and loc[0] in {"knobs", "search"}:
            parent = Knob if loc[0] == "knobs" else Domain
        elif parent is None and len(loc) == 3 and loc[0] in {"metrics", "success"}:
            parent = MetricSpec if loc[0] == "metrics" else Target
        allowed = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return ConfigError(file, key, f"a known key (one of {allowed}); unknown key{hint}")
    if error["type"] == "missing":
        return ConfigError(file, key, "this required key")
    message = error["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
    return ConfigError(file, key, message, error.get("input"))
