"""Campaign configuration: typed dataclasses, YAML in, one clear error out.

A campaign runs for hours, so a typo must fail at once with the key it concerns, not an hour
in. :func:`load_config` checks every key against the dataclasses below (unknown keys, wrong
types, out-of-range values, missing files) and raises one :class:`ConfigError` listing every
problem it found, each naming its key, so a user fixes a config in one round instead of one
error per run; the CLI turns that into exit code 2. Paths in a config file are relative to
that file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from evosearch.devices import DEVICE_PATTERN
from evosearch.propose.registry import OPERATOR_NAMES


class ConfigError(ValueError):
    """A config that cannot be run; the message names the file and, for each problem, its key.

    ``problems`` holds one line per mistake (the message joins them), for callers that want them apart.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


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
    max_tokens_param: str = "max_tokens"  # the request field for max_tokens (OpenAI o-series: max_completion_tokens)
    headers: dict[str, str] = field(default_factory=dict)  # extra HTTP headers, sent as given (no secrets here)
    header_env: dict[str, str] = field(default_factory=dict)  # header -> env variable holding its value (Azure api-key)

    @property
    def label(self) -> str:
        return self.name or self.model


@dataclass(frozen=True)
class LLMConfig:
    models: tuple[LLMModelConfig, ...] = ()
    share: float = 0.5  # of the proposals, asked of the models (a bandit picks which); the rest: offline operators
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
    pause_after_failures: int = 3  # evaluations in a row failed by the machine, not the program: pause the run


@dataclass(frozen=True)
class ConfirmConfig:
    """Re-evaluation of a campaign's best candidates on fresh seeds, kept beside their search scores.

    A search keeps the best of many noisy scores, so its best scores are biased upward; a
    program that would rank among the campaign's ``top`` best is measured again on seeds the
    search never used (and on the held-out tasks) in the same evaluation slot.
    """

    top: int = 0  # confirm a program that would rank among this many best; 0: never
    seeds: int | None = None  # seeds per task; None: twice the suite's


@dataclass(frozen=True)
class MetatuneConfig:
    """Meta-gradient tuning of elites' constants, run by the campaign as one more operator.

    Evolution finds a rule's form and tunes its numbers badly (a mutation moves one at random);
    every ``every`` evaluations, an elite not tuned before gets its constants tuned by
    meta-gradients, and the tuned child competes in the archive like any other.
    """

    every: int = 0  # evaluations between tuning runs; 0: never
    meta_steps: int = 60
    inner_steps: int = 4  # agent updates unrolled per meta-step (at most one iteration's epochs x minibatches)
    method: Literal["grad", "es", "auto"] = "auto"  # auto: meta-gradients, ES where they vanish
    population: int = 8  # agents per task, at staggered ages
    meta_lr: float = 0.05
    es_pairs: int = 4
    es_sigma: float = 0.1
    only: tuple[str, ...] = ()  # tune only these constants; () = every lifted one
    device: str = "cpu"  # where the tuning jobs train: cpu, cuda or cuda:N


@dataclass(frozen=True)
class ExecutorConfig:
    """Where evaluations run: this machine's warm sandbox workers, or the workers of a Ray cluster.

    The search itself (archive, operators, language models, bandit) always stays in the process
    that runs the campaign; only evaluations travel. With ``ray``, each evaluation slot is a Ray
    actor that hosts a warm cascade evaluator, so a candidate is sandboxed and scored on its node
    exactly as it would be here (docs/cluster.md).
    """

    kind: Literal["local", "ray"] = "local"
    # ray: None joins the cluster in $RAY_ADDRESS if set, else starts Ray inside this process (one machine);
    # "auto" the cluster `ray start` began on this machine; "HOST:PORT" a cluster's head; "ray://HOST:PORT"
    # a head through Ray Client.
    address: str | None = None
    cpus_per_evaluation: float = 1.0  # ray: CPUs each evaluation slot reserves on its node
    gpus_per_evaluation: float = 0.0  # ray: GPUs each slot reserves (fractions share one GPU)
    max_in_flight: int | None = None  # ray: evaluations at once; None: as many slots as the cluster's CPUs/GPUs fit
    max_retries: int = 2  # ray: fresh workers an evaluation gets after its worker died; then it is an infra_error
    start_timeout_s: float = 300.0  # ray: how long a slot's worker may take to start before the cluster counts as gone


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
    confirm: ConfirmConfig = ConfirmConfig()
    metatune: MetatuneConfig = MetatuneConfig()
    llm: LLMConfig = LLMConfig()
    executor: ExecutorConfig = ExecutorConfig()
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
    """Read, type-check and validate a campaign config; raise one ConfigError listing every bad key."""
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
    return _checked(raw, f"{path}: ")


def config_from_dict(raw: dict[str, Any]) -> CampaignConfig:
    """Build a config from a mapping (tests, programmatic use); same checks as :func:`load_config`."""
    return _checked(dict(raw), "")


def _checked(raw: dict[str, Any], prefix: str) -> CampaignConfig:
    """Build and validate, collecting every problem; raise them together in one ConfigError."""
    problems = Problems()
    config = _build(CampaignConfig, raw, "", problems)
    if config is not _BAD:  # checks beyond types need a whole config (every required key given)
        _validate(config, problems)
    problems.raise_if_any(prefix)
    return config


class Problems:
    """Every mistake found in one config, so that all are reported at once.

    Build problems (unknown keys, wrong types) are found first; a bad value is replaced by its
    default so validation can go on, and validation then stays quiet about keys that already
    have a problem, which would only repeat it in other words.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.keys: list[str] = []

    def add(self, key: str, line: str) -> None:
        """Record a problem with ``key``, unless an earlier one concerns it, a key inside it or its section."""
        if any(_related(key, known) for known in self.keys):
            return
        self.keys.append(key)
        self.lines.append(line)

    def raise_if_any(self, prefix: str = "") -> None:
        if not self.lines:
            return
        if len(self.lines) == 1:
            raise ConfigError(prefix + self.lines[0], list(self.lines))
        listed = "".join(f"\n  - {line}" for line in self.lines)
        raise ConfigError(f"{prefix}{len(self.lines)} problems:{listed}", list(self.lines))


def _related(key: str, other: str) -> bool:
    """Whether one key is the other or lies inside it (``a.b`` and ``a.b.c``, ``a`` and ``a[0]``)."""
    if not key or not other:
        return False
    outer, inner = sorted((key, other), key=len)
    return inner == outer or inner.startswith((outer + ".", outer + "["))


class _Bad:
    """The value of a key that did not pass (its problem is recorded); the field keeps its default."""

    def __repr__(self) -> str:
        return "<bad value>"


_BAD: Any = _Bad()


def _build(cls: type, raw: Any, where: str, problems: Problems) -> Any:
    """An instance of dataclass ``cls`` from a mapping; _BAD when a required key is missing or bad."""
    if not isinstance(raw, dict):
        problems.add(where, f"{where or 'config'}: expected a mapping, got {_describe(raw)}")
        return _BAD
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    known = ", ".join(sorted(n for n in names if n != "source_path"))
    for name in sorted(set(raw) - names, key=str):
        key = f"{where}.{name}" if where else str(name)
        problems.add(key, f"unknown key {key!r} (known here: {known})")
    values, complete = {}, True
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        value = _coerce(hints[f.name], raw[f.name], key, problems) if f.name in raw else _BAD
        if value is not _BAD:
            values[f.name] = value
        elif required:
            complete = False
            if f.name not in raw:
                problems.add(key, f"missing required key {key!r}")
    return cls(**values) if complete else _BAD


def _coerce(hint: Any, value: Any, key: str, problems: Problems) -> Any:
    """``value`` checked against the type ``hint``; _BAD (with the problem recorded) if it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key, problems)
    if origin is Literal:
        if value in args:
            return value
        problems.add(key, f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return _BAD
    if origin is tuple:
        return _coerce_list(args[0], value, key, problems)
    if origin is dict:
        return _coerce_mapping(args[1], value, key, problems)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, problems)
    return _coerce_scalar(hint, value, key, problems)


def _coerce_list(item: Any, value: Any, key: str, problems: Problems) -> Any:
    if not isinstance(value, list):
        problems.add(key, f"{key}: expected a list, got {_describe(value)}")
        return _BAD
    items = [_coerce(item, v, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    return _BAD if any(v is _BAD for v in items) else tuple(items)


def _coerce_mapping(item: Any, value: Any, key: str, problems: Problems) -> Any:
    """A mapping with string keys (HTTP header names and the like)."""
    if not isinstance(value, dict):
        problems.add(key, f"{key}: expected a mapping, got {_describe(value)}")
        return _BAD
    items = {}
    for name, v in value.items():
        if not isinstance(name, str):
            problems.add(f"{key}.{name}", f"{key}: key {name!r} is not a string")
            return _BAD
        items[name] = _coerce(item, v, f"{key}.{name}", problems)
    return _BAD if any(v is _BAD for v in items.values()) else items


_SCALARS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _coerce_scalar(hint: Any, value: Any, key: str, problems: Problems) -> Any:
    if hint not in _SCALARS:
        raise TypeError(f"{key}: unsupported type {hint} in a config dataclass")  # a bug here, not in the config
    expected, fits = _SCALARS[hint]
    if not fits(value):
        problems.add(key, f"{key}: expected {expected}, got {_describe(value)}")
        return _BAD
    return float(value) if hint is float else value


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) else type(value).__name__


def _positive(problems: Problems, key: str, value: float | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        problems.add(key, f"{key}: must be greater than 0, got {value!r}")


def _validate(config: CampaignConfig, problems: Problems) -> None:
    """Checks that need more than a type: ranges, files that must exist, names that must be known."""
    _validate_identity(config, problems)
    _validate_budget(config, problems)
    _validate_evaluation(config, problems)
    _validate_archive(config.archive, problems)
    _validate_selection(config.selection, problems)
    _validate_operators(config, problems)
    _validate_metatune(config, problems)
    _validate_llm(config.llm, config_dir(config), problems)
    _validate_executor(config.executor, problems)


def _validate_identity(config: CampaignConfig, problems: Problems) -> None:
    from evosearch import kinds

    if config.kind not in kinds.names():
        problems.add("kind", f"kind: {config.kind!r} is not one of {', '.join(map(repr, kinds.names()))}")
    if not config.name or any(c in config.name for c in "/\\\0"):
        problems.add("name", f"name: {config.name!r} is not a usable campaign name")
    if not config.seeds:
        problems.add("seeds", "seeds: list at least one seed program")
    for i, path in enumerate(config.seed_paths()):
        if not path.is_file():
            problems.add(f"seeds[{i}]", f"seeds[{i}]: no such file {str(path)!r}")


def _validate_budget(config: CampaignConfig, problems: Problems) -> None:
    _positive(problems, "parallel", config.parallel, allow_none=False)
    _positive(problems, "budget.max_evals", config.budget.max_evals)
    _positive(problems, "budget.minutes", config.budget.minutes)
    if config.budget.max_evals is None and config.budget.minutes is None:
        problems.add("budget", "budget: set max_evals, minutes, or both (a campaign needs an end)")
    if config.budget.pause_after_failures < 0:
        problems.add("budget.pause_after_failures", "budget.pause_after_failures: must be 0 (never) or more, got "
                     f"{config.budget.pause_after_failures!r}")
    if config.confirm.top < 0:
        problems.add("confirm.top", f"confirm.top: must be 0 (never) or more, got {config.confirm.top!r}")
    _positive(problems, "confirm.seeds", config.confirm.seeds)


def _validate_metatune(config: CampaignConfig, problems: Problems) -> None:
    mt = config.metatune
    if mt.every < 0:
        problems.add("metatune.every", f"metatune.every: must be 0 (never) or more, got {mt.every!r}")
    for key in ("meta_steps", "inner_steps", "population", "es_pairs", "meta_lr", "es_sigma"):
        _positive(problems, f"metatune.{key}", getattr(mt, key), allow_none=False)
    if mt.device == "auto" or not DEVICE_PATTERN.match(mt.device):
        problems.add("metatune.device", f"metatune.device: {mt.device!r} is not one of cpu, cuda, cuda:N")
    if mt.every and config.kind != "rule":
        problems.add("metatune.every", f"metatune.every: metatune tunes rules' constants; this campaign's kind is "
                                       f"{config.kind!r}")


def _validate_evaluation(config: CampaignConfig, problems: Problems) -> None:
    from evosearch import kinds
    from evosearch.envs.suites import SuiteError, load_suite

    ev = config.evaluation
    try:
        suite = load_suite(resolved_suite(config))
    except SuiteError as err:
        problems.add("evaluation.suite", f"evaluation.suite: {err}")
    else:
        if suite.kind != config.kind and config.kind in kinds.names():
            problems.add("evaluation.suite", f"evaluation.suite: suite {suite.name!r} scores {suite.kind} programs, "
                                             f"but this campaign's kind is {config.kind!r}")
    for key in ("smoke_timeout_s", "task_timeout_s", "memory_mb", "workers", "seeds"):
        _positive(problems, f"evaluation.{key}", getattr(ev, key))
    if 0 < ev.memory_mb < 700:
        problems.add("evaluation.memory_mb",
                     f"evaluation.memory_mb: {ev.memory_mb} is below the ~700 MiB that torch alone needs")
    if not DEVICE_PATTERN.match(ev.device):
        problems.add("evaluation.device", f"evaluation.device: {ev.device!r} is not one of auto, cpu, cuda, cuda:N")
    elif config.kind in kinds.names():
        try:
            kinds.get(config.kind).check_device(ev.device)
        except ValueError as err:
            problems.add("evaluation.device", f"evaluation.device: {err}")


def _validate_archive(ar: ArchiveConfig, problems: Problems) -> None:
    from evosearch.archive.descriptors import DESCRIPTORS

    _positive(problems, "archive.islands", ar.islands, allow_none=False)
    _positive(problems, "archive.migration_interval", ar.migration_interval, allow_none=False)
    if ar.migration_count < 0:
        problems.add("archive.migration_count", "archive.migration_count: must be 0 or more")
    if not ar.descriptors:
        problems.add("archive.descriptors", "archive.descriptors: list at least one descriptor")
    for i, d in enumerate(ar.descriptors):
        key = f"archive.descriptors[{i}]"
        if d.name not in DESCRIPTORS:
            problems.add(f"{key}.name", f"{key}.name: unknown descriptor {d.name!r} "
                                        f"(known: {', '.join(sorted(DESCRIPTORS))})")
        if not d.max > d.min:
            problems.add(f"{key}.max", f"{key}: max must be greater than min")
        _positive(problems, f"{key}.bins", d.bins, allow_none=False)


def _validate_selection(sel: SelectionConfig, problems: Problems) -> None:
    if not 0.0 <= sel.exploit_ratio <= 1.0:
        problems.add("selection.exploit_ratio",
                     f"selection.exploit_ratio: must be between 0 and 1, got {sel.exploit_ratio}")
    _positive(problems, "selection.tournament_size", sel.tournament_size, allow_none=False)
    if sel.inspirations < 0:
        problems.add("selection.inspirations", "selection.inspirations: must be 0 or more")


def _validate_operators(config: CampaignConfig, problems: Problems) -> None:
    ops = config.operators
    if not ops.enabled and not config.llm.models:
        problems.add("operators.enabled", "operators.enabled: enable at least one operator (or configure llm.models)")
    for i, name in enumerate(ops.enabled):
        if name not in OPERATOR_NAMES:
            problems.add(f"operators.enabled[{i}]", f"operators.enabled[{i}]: unknown operator {name!r} "
                                                    f"(known: {', '.join(OPERATOR_NAMES)})")
    _positive(problems, "operators.max_attempts", ops.max_attempts, allow_none=False)
    if ops.gp_seed_genomes and any(n.startswith("gp.") for n in ops.enabled):
        from evosearch.propose.gp import SEED_GENOMES

        for i, genome in enumerate(ops.gp_seed_genomes):
            if genome not in SEED_GENOMES:
                problems.add(f"operators.gp_seed_genomes[{i}]",
                             f"operators.gp_seed_genomes[{i}]: unknown genome {genome!r} "
                             f"(known: {', '.join(sorted(SEED_GENOMES))})")
    if config.llm.models and not ops.enabled and config.llm.share == 0:
        problems.add("llm.share", "llm.share: 0 with no offline operators enabled leaves nothing to propose")


#: Where a Ray driver may connect: a cluster on this machine, a head's GCS address, or Ray Client.
RAY_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9._-]+:[0-9]{1,5})$")


def _validate_executor(ex: ExecutorConfig, problems: Problems) -> None:
    if ex.address is not None and not RAY_ADDRESS.match(ex.address):
        problems.add("executor.address", f"executor.address: {ex.address!r} is not auto, HOST:PORT or "
                                          "ray://HOST:PORT (leave it out to start Ray inside this process)")
    _positive(problems, "executor.cpus_per_evaluation", ex.cpus_per_evaluation, allow_none=False)
    if ex.gpus_per_evaluation < 0:
        problems.add("executor.gpus_per_evaluation",
                     f"executor.gpus_per_evaluation: must be 0 or more, got {ex.gpus_per_evaluation!r}")
    _positive(problems, "executor.max_in_flight", ex.max_in_flight)
    if ex.max_retries < 0:
        problems.add("executor.max_retries", f"executor.max_retries: must be 0 or more, got {ex.max_retries!r}")
    _positive(problems, "executor.start_timeout_s", ex.start_timeout_s, allow_none=False)


#: An HTTP header name (an RFC 9110 token); anything else would corrupt the request.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _validate_llm(llm: LLMConfig, base: Path, problems: Problems) -> None:
    from evosearch.propose.prompts import TemplateError, load_templates

    labels = [m.label for m in llm.models]
    for i, m in enumerate(llm.models):
        key = f"llm.models[{i}]"
        if labels.count(m.label) > 1:
            problems.add(f"{key}.name", f"{key}: the label {m.label!r} is used twice; give each model a distinct name")
        _validate_model(m, key, problems)
    if not 0.0 <= llm.share <= 1.0:
        problems.add("llm.share", f"llm.share: must be between 0 and 1, got {llm.share}")
    if llm.cost_cap is not None and llm.cost_cap < 0:
        problems.add("llm.cost_cap", "llm.cost_cap: cannot be negative")
    for name in ("max_attempts", "max_in_flight"):
        if getattr(llm, name) < 1:
            problems.add(f"llm.{name}", f"llm.{name}: must be at least 1")
    if llm.template_dir is not None:
        try:
            load_templates(llm_template_dir(llm, base))
        except (TemplateError, OSError) as err:
            problems.add("llm.template_dir", f"llm.template_dir: {err}")


def _validate_model(m: LLMModelConfig, key: str, problems: Problems) -> None:
    if not m.base_url.startswith(("http://", "https://")):
        problems.add(f"{key}.base_url", f"{key}.base_url: {m.base_url!r} must start with http:// or https://")
    if m.api_key_env and not os.environ.get(m.api_key_env):
        problems.add(f"{key}.api_key_env", f"{key}.api_key_env: the environment variable {m.api_key_env} is not set")
    for name in ("max_tokens", "timeout_s", "weight"):
        if getattr(m, name) <= 0:
            problems.add(f"{key}.{name}", f"{key}.{name}: must be greater than 0")
    if m.max_retries < 0 or m.price_in_per_1k < 0 or m.price_out_per_1k < 0:
        problems.add(f"{key}.max_retries", f"{key}: max_retries and prices cannot be negative")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m.max_tokens_param):
        problems.add(f"{key}.max_tokens_param", f"{key}.max_tokens_param: {m.max_tokens_param!r} is not a field name "
                                                "(e.g. max_tokens, max_completion_tokens)")
    _validate_headers(m, key, problems)


def _validate_headers(m: LLMModelConfig, key: str, problems: Problems) -> None:
    """Header names must be HTTP tokens and values one line; a secret's variable must be set now, not at hour 3."""
    for section, headers in (("headers", m.headers), ("header_env", m.header_env)):
        for name, value in headers.items():
            where = f"{key}.{section}.{name}"
            if not _HEADER_NAME.match(name):
                problems.add(where, f"{where}: {name!r} is not a valid HTTP header name")
            elif "\r" in value or "\n" in value:
                problems.add(where, f"{where}: a header value must be one line")
            elif section == "header_env" and not os.environ.get(value):
                problems.add(where, f"{where}: the environment variable {value} is not set")
    both = sorted({n.lower() for n in m.headers} & {n.lower() for n in m.header_env})
    if both:
        problems.add(f"{key}.header_env", f"{key}: header {both[0]!r} is set in both headers and header_env")


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
