"""Campaign configuration: typed dataclasses, YAML in, one clear error out.

A campaign runs for hours, so a typo must fail at once with the key it concerns, not an hour
in. :func:`load_config` checks every key against the dataclasses below (unknown keys, wrong
types, out-of-range values, missing files) and raises :class:`ConfigError` naming the key;
the CLI turns that into exit code 2. Paths in a config file are relative to that file.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from evosearch.devices import DEVICE_PATTERN
from evosearch.propose.registry import OPERATOR_NAMES


class ConfigError(ValueError):
    """A config that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class EvaluationConfig:
    """How each candidate is evaluated: the cascade of :mod:`evosearch.evaluate`."""

    suite: str = "quick"  # a suite name or a path to a suite YAML
    seeds: int | None = None  # None: the suite's
    hurdle: bool = True
    hurdle_threshold: float | None = None  # None: the suite's
    fitness: Literal["iqm", "auc"] = "iqm"
    smoke_timeout_s: float = 60.0
    task_timeout_s: float = 600.0
    memory_mb: int = 4096
    workers: int = 1  # training jobs per evaluation; the campaign runs `parallel` evaluations at once
    sandbox: Literal["auto", "bubblewrap", "namespaces", "rlimits"] = "auto"  # `evosearch doctor` shows each
    device: str = "auto"  # auto (GPU for torch-native tasks if there is one), cpu, cuda or cuda:N


@dataclass(frozen=True)
class DescriptorConfig:
    """One axis of the MAP-Elites grid: a descriptor (see ``archive/descriptors.py``) and its bins."""

    name: str
    min: float
    max: float
    bins: int = 5


@dataclass(frozen=True)
class ArchiveConfig:
    islands: int = 2
    migration_interval: int = 25  # completed evaluations between migrations
    migration_count: int = 2  # elites each island sends to the next one (ring)
    qd_offset: float = 0.0  # QD score sums (score - qd_offset) over filled cells, floored at 0
    descriptors: tuple[DescriptorConfig, ...] = (
        DescriptorConfig("code_size", 20.0, 200.0, 6),
        DescriptorConfig("learning_speed", 0.0, 1.0, 5),
    )


@dataclass(frozen=True)
class SelectionConfig:
    exploit_ratio: float = 0.7  # tournament among the island's elites; else a uniformly random elite
    tournament_size: int = 3
    inspirations: int = 3  # elites of other cells and islands shown to a proposer (and crossover mates)


@dataclass(frozen=True)
class OperatorConfig:
    enabled: tuple[str, ...] = OPERATOR_NAMES
    bandit: Literal["ucb1", "thompson"] = "thompson"
    gp_seed_genomes: tuple[str, ...] = ("a2c", "pg")  # known trees gp.new may start from (a2c, pg, ppo_clip)
    max_attempts: int = 20  # proposals tried for one slot before the campaign gives up on it


@dataclass(frozen=True)
class LLMModelConfig:
    """One OpenAI-compatible endpoint and model (OpenAI, ``vllm serve``, Ollama, ...)."""

    model: str  # the model name the endpoint expects
    base_url: str  # e.g. https://api.openai.com/v1, http://localhost:8000/v1, http://localhost:11434/v1
    name: str | None = None  # label in the archive and the bandit; default: model
    api_key_env: str | None = None  # the environment variable holding the key; None for local servers
    temperature: float | None = 0.8
    top_p: float | None = None
    max_tokens: int = 2048
    price_in_per_1k: float = 0.0  # USD per 1,000 prompt tokens
    price_out_per_1k: float = 0.0  # USD per 1,000 completion tokens
    weight: float = 1.0  # scales the bandit's draw for this model: a prior preference
    timeout_s: float = 120.0  # per attempt, the whole response
    max_retries: int = 3  # on 429, 5xx, timeouts

    @property
    def label(self) -> str:
        return self.name or self.model


@dataclass(frozen=True)
class LLMConfig:
    models: tuple[LLMModelConfig, ...] = ()
    cost_cap: float | None = None  # USD for the whole campaign; LLM use stops before passing it
    edit_format: Literal["diff", "rewrite"] = "diff"  # SEARCH/REPLACE blocks, or one fenced rewrite
    max_attempts: int = 3  # model answers per proposal: failed edits and duplicates are sent back
    template_dir: str | None = None  # your prompt templates (missing files fall back to the packaged ones)
    cooldown_s: float = 300.0  # a model whose endpoint failed rests this long
    max_in_flight: int = 2  # LLM calls at once


@dataclass(frozen=True)
class BudgetConfig:
    max_evals: int | None = 100  # completed evaluations (duplicates not counted)
    minutes: float | None = None  # wall-clock minutes of this run


@dataclass(frozen=True)
class CampaignConfig:
    """A whole campaign; ``evosearch run CONFIG`` starts or resumes the campaign named here."""

    name: str
    seeds: tuple[str, ...]  # seed programs; paths relative to the config file
    kind: str = "rule"  # a program kind of evosearch.kinds: rule or policy
    db: str | None = None  # default: archive/NAME.db under the current directory
    parallel: int = field(default_factory=lambda: os.cpu_count() or 1)
    rng_seed: int = 0
    evaluation: EvaluationConfig = EvaluationConfig()
    archive: ArchiveConfig = ArchiveConfig()
    selection: SelectionConfig = SelectionConfig()
    operators: OperatorConfig = OperatorConfig()
    budget: BudgetConfig = BudgetConfig()
    llm: LLMConfig = LLMConfig()
    source_path: str | None = None  # where this config was read from (set by the loader)

    def db_path(self) -> Path:
        return Path(self.db) if self.db else Path("archive") / f"{self.name}.db"

    def seed_paths(self) -> list[Path]:
        base = config_dir(self)
        return [p if p.is_absolute() else (base / p) for p in map(Path, self.seeds)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_dir(config: CampaignConfig) -> Path:
    """Where relative paths in ``config`` start: its file's directory, else the current one."""
    return Path(config.source_path).parent if config.source_path else Path.cwd()


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> CampaignConfig:
    """Read, type-check and validate a campaign config; raise ConfigError naming the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    for key, value in (overrides or {}).items():  # a section's override changes only the keys it names
        section = raw.get(key)
        raw[key] = {**section, **value} if isinstance(section, dict) and isinstance(value, dict) else value
    raw["source_path"] = str(path)
    try:
        config = _build(CampaignConfig, raw, "")
        _validate(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    return config


def config_from_dict(raw: dict[str, Any]) -> CampaignConfig:
    """Build a config from a mapping (tests, programmatic use); same checks as :func:`load_config`."""
    config = _build(CampaignConfig, dict(raw), "")
    _validate(config)
    return config


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        known = ", ".join(sorted(n for n in names if n != "source_path"))
        raise ConfigError(f"unknown key {key!r} (known here: {known})")
    values = {}
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if f.name in raw:
            values[f.name] = _coerce(hints[f.name], raw[f.name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {key!r}")
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_describe(value)}")
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_describe(value)}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # a bug in this module, not in the config


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) else type(value).__name__


def _validate(config: CampaignConfig) -> None:
    """Checks that need more than a type: ranges, files that must exist, names that must be known."""
    from evosearch.archive.descriptors import DESCRIPTORS
    from evosearch.envs.suites import SuiteError, load_suite

    def positive(key: str, value: float | None, allow_none: bool = True) -> None:
        if value is None and allow_none:
            return
        if value is None or value <= 0:
            raise ConfigError(f"{key}: must be greater than 0, got {value!r}")

    from evosearch import kinds

    if config.kind not in kinds.names():
        raise ConfigError(f"kind: {config.kind!r} is not one of {', '.join(map(repr, kinds.names()))}")
    if not config.name or any(c in config.name for c in "/\\\0"):
        raise ConfigError(f"name: {config.name!r} is not a usable campaign name")
    if not config.seeds:
        raise ConfigError("seeds: list at least one seed program")
    for i, path in enumerate(config.seed_paths()):
        if not path.is_file():
            raise ConfigError(f"seeds[{i}]: no such file {str(path)!r}")
    positive("parallel", config.parallel, allow_none=False)
    positive("budget.max_evals", config.budget.max_evals)
    positive("budget.minutes", config.budget.minutes)
    if config.budget.max_evals is None and config.budget.minutes is None:
        raise ConfigError("budget: set max_evals, minutes, or both (a campaign needs an end)")
    ev = config.evaluation
    try:
        suite = load_suite(resolved_suite(config))
    except SuiteError as err:
        raise ConfigError(f"evaluation.suite: {err}") from None
    if suite.kind != config.kind:
        raise ConfigError(f"evaluation.suite: suite {suite.name!r} scores {suite.kind} programs, but this campaign's "
                          f"kind is {config.kind!r}")
    for key in ("smoke_timeout_s", "task_timeout_s", "memory_mb", "workers", "seeds"):
        positive(f"evaluation.{key}", getattr(ev, key))
    if ev.memory_mb < 700:
        raise ConfigError(f"evaluation.memory_mb: {ev.memory_mb} is below the ~700 MiB that torch alone needs")
    if not DEVICE_PATTERN.match(ev.device):
        raise ConfigError(f"evaluation.device: {ev.device!r} is not one of auto, cpu, cuda, cuda:N")
    try:
        kinds.get(config.kind).check_device(ev.device)
    except ValueError as err:
        raise ConfigError(f"evaluation.device: {err}") from None
    ar = config.archive
    positive("archive.islands", ar.islands, allow_none=False)
    positive("archive.migration_interval", ar.migration_interval, allow_none=False)
    if ar.migration_count < 0:
        raise ConfigError("archive.migration_count: must be 0 or more")
    if not ar.descriptors:
        raise ConfigError("archive.descriptors: list at least one descriptor")
    for i, d in enumerate(ar.descriptors):
        if d.name not in DESCRIPTORS:
            raise ConfigError(f"archive.descriptors[{i}].name: unknown descriptor {d.name!r} "
                              f"(known: {', '.join(sorted(DESCRIPTORS))})")
        if not d.max > d.min:
            raise ConfigError(f"archive.descriptors[{i}]: max must be greater than min")
        positive(f"archive.descriptors[{i}].bins", d.bins, allow_none=False)
    sel = config.selection
    if not 0.0 <= sel.exploit_ratio <= 1.0:
        raise ConfigError(f"selection.exploit_ratio: must be between 0 and 1, got {sel.exploit_ratio}")
    positive("selection.tournament_size", sel.tournament_size, allow_none=False)
    if sel.inspirations < 0:
        raise ConfigError("selection.inspirations: must be 0 or more")
    ops = config.operators
    if not ops.enabled and not config.llm.models:
        raise ConfigError("operators.enabled: enable at least one operator (or configure llm.models)")
    for i, name in enumerate(ops.enabled):
        if name not in OPERATOR_NAMES:
            raise ConfigError(f"operators.enabled[{i}]: unknown operator {name!r} "
                              f"(known: {', '.join(OPERATOR_NAMES)})")
    positive("operators.max_attempts", ops.max_attempts, allow_none=False)
    _validate_llm(config.llm, config_dir(config))
    if ops.gp_seed_genomes and any(n.startswith("gp.") for n in ops.enabled):
        from evosearch.propose.gp import SEED_GENOMES

        for i, genome in enumerate(ops.gp_seed_genomes):
            if genome not in SEED_GENOMES:
                raise ConfigError(f"operators.gp_seed_genomes[{i}]: unknown genome {genome!r} "
                                  f"(known: {', '.join(sorted(SEED_GENOMES))})")


def _validate_llm(llm: LLMConfig, base: Path) -> None:
    from evosearch.propose.prompts import TemplateError, load_templates

    labels = [m.label for m in llm.models]
    for i, m in enumerate(llm.models):
        key = f"llm.models[{i}]"
        if labels.count(m.label) > 1:
            raise ConfigError(f"{key}: the label {m.label!r} is used twice; give each model a distinct name")
        if not m.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{key}.base_url: {m.base_url!r} must start with http:// or https://")
        if m.api_key_env and not os.environ.get(m.api_key_env):
            raise ConfigError(f"{key}.api_key_env: the environment variable {m.api_key_env} is not set")
        for name in ("max_tokens", "timeout_s", "weight"):
            if getattr(m, name) <= 0:
                raise ConfigError(f"{key}.{name}: must be greater than 0")
        if m.max_retries < 0 or m.price_in_per_1k < 0 or m.price_out_per_1k < 0:
            raise ConfigError(f"{key}: max_retries and prices cannot be negative")
    if llm.cost_cap is not None and llm.cost_cap < 0:
        raise ConfigError("llm.cost_cap: cannot be negative")
    for name in ("max_attempts", "max_in_flight"):
        if getattr(llm, name) < 1:
            raise ConfigError(f"llm.{name}: must be at least 1")
    if llm.template_dir is not None:
        try:
            load_templates(llm_template_dir(llm, base))
        except (TemplateError, OSError) as err:
            raise ConfigError(f"llm.template_dir: {err}") from None


def llm_template_dir(llm: LLMConfig, base: Path) -> Path | None:
    if llm.template_dir is None:
        return None
    path = Path(llm.template_dir)
    return path if path.is_absolute() else base / path


def resolved_suite(config: CampaignConfig) -> str:
    """The suite reference with a relative YAML path resolved against the config file."""
    ref = config.evaluation.suite
    if ref.endswith((".yaml", ".yml")) and config.source_path and not Path(ref).is_absolute():
        return str(Path(config.source_path).parent / ref)
    return ref
