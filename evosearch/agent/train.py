"""Fine-tune a proposer LLM on an archive's datasets: SFT, then step-wise GRPO, each with LoRA.

The recipe is ML-Agent's (Liu et al. 2025): supervised fine-tuning on diverse good edits
(``sft.jsonl`` of ``evosearch agent dataset``), then reinforcement learning where each sample
is one step of a search (a parent at a moment of a campaign, ``states.jsonl``), rewarded by the
real evaluator (:mod:`evosearch.agent.reward`). TRL's ``SFTTrainer`` and ``GRPOTrainer`` do
the training, PEFT's LoRA keeps it to an adapter; this module turns a config file into their
arguments, checks paths before anything loads, and saves the metrics beside the adapter.

Everything is local: the base model and its tokenizer are paths, never hub names, so nothing
is downloaded at run time.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

EXTRA_HINT = "pip install 'evosearch[agent]'"


class AgentConfigError(ValueError):
    """A trainer config that cannot run: the message names the key and what is wrong."""


def require_extra() -> None:
    """Fail with one line naming the extra when TRL, PEFT, transformers or datasets are missing."""
    missing = []
    for module in ("trl", "peft", "transformers", "datasets"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise AgentConfigError(f"{', '.join(missing)} not installed: {EXTRA_HINT}")


@dataclass(frozen=True)
class LoraSettings:
    """The adapter: rank, scaling and which projections it wraps (a Llama/Qwen-style model's)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # or ("all-linear",)
    modules_to_save: tuple[str, ...] = ()  # trained in full beside the adapter (a tiny model's lm_head)


@dataclass(frozen=True)
class SftSettings:
    """``evosearch agent sft CONFIG``: a LoRA adapter trained on ``sft.jsonl``."""

    base_model: str  # a local model directory (config, weights, tokenizer)
    dataset: str  # sft.jsonl, or the directory `agent dataset` wrote
    output: str  # the adapter directory to write
    lora: LoraSettings = LoraSettings()
    warmup: bool = False  # also train on warmup.jsonl beside sft.jsonl (`agent dataset --operator-edits N`)
    steps: int = 100
    batch: int = 4
    learning_rate: float = 2e-4
    max_length: int = 4096
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: a 7B model's long prompts fit
    seed: int = 0


@dataclass(frozen=True)
class GrpoSettings:
    """``evosearch agent grpo CONFIG``: step-wise GRPO on ``states.jsonl`` with the evaluator's reward."""

    base_model: str
    dataset: str  # states.jsonl, or the directory `agent dataset` wrote
    output: str
    adapter: str | None = None  # start from this (SFT) adapter; None: a fresh LoRA on the base model
    lora: LoraSettings = LoraSettings()
    steps: int = 50
    batch: int = 4  # completions per device step; a multiple of generations
    generations: int = 4  # completions per prompt: GRPO's group
    learning_rate: float = 1e-5
    beta: float = 0.04  # KL penalty to the starting policy
    temperature: float = 1.0
    max_completion_length: int = 512
    reward_suite: str = "quick"  # the cheap suite the reward's cascade scores edits on
    reward_alpha: float = 10.0
    reward_stages: str = "hurdle"
    reward_parallel: int = 1  # a group's completions evaluated at once (one CPU core each)
    use_vllm: bool = False  # on a GPU: generate with vLLM inside the trainer (TRL's colocate mode)
    vllm_gpu_memory_utilization: float = 0.3  # colocated vLLM's share of the GPU (weights + KV cache)
    gradient_checkpointing: bool = False
    seed: int = 0


def load_settings(path: str | Path, kind: type) -> Any:
    """Read a YAML trainer config into ``kind`` (SftSettings or GrpoSettings); paths are relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise AgentConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise AgentConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise AgentConfigError(f"{path}: expected a mapping of keys")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise AgentConfigError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})")
    missing = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING and n not in raw]
    if missing:
        raise AgentConfigError(f"{path}: missing required key(s) {', '.join(missing)}")
    values = dict(raw)
    if isinstance(values.get("lora"), dict):
        lora = values["lora"]
        bad = sorted(set(lora) - {f.name for f in fields(LoraSettings)})
        if bad:
            raise AgentConfigError(f"{path}: unknown lora key(s) {', '.join(bad)}")
        values["lora"] = LoraSettings(**{k: tuple(v) if k in ("target_modules", "modules_to_save") else v
                                         for k, v in lora.items()})
    for key in ("base_model", "dataset", "output", "adapter"):
        if isinstance(values.get(key), str) and not Path(values[key]).is_absolute():
            values[key] = str((path.parent / values[key]).resolve())
    try:
        settings = kind(**values)
    except TypeError as err:
        raise AgentConfigError(f"{path}: {err}") from err
    check_paths(settings)
    return settings


def check_paths(settings: SftSettings | GrpoSettings) -> None:
    """One clear message for a base model, adapter or dataset that is not where the config says."""
    base = Path(settings.base_model)
    if not (base / "config.json").is_file():
        raise AgentConfigError(f"base_model: {base} is not a local model directory (no config.json); models are "
                               "local paths, never downloaded")
    adapter = getattr(settings, "adapter", None)
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise AgentConfigError(f"adapter: {adapter} holds no adapter_config.json (an `agent sft` output)")
    for name in _dataset_names(settings):
        dataset_file(settings.dataset, name)
    for name in ("steps", "batch") + (("reward_parallel",) if isinstance(settings, GrpoSettings) else ()):
        if getattr(settings, name) < 1:
            raise AgentConfigError(f"{name}: must be at least 1, got {getattr(settings, name)!r}")
    if isinstance(settings, GrpoSettings) and not 0 < settings.vllm_gpu_memory_utilization <= 1:
        raise AgentConfigError(f"vllm_gpu_memory_utilization: a share of the GPU in (0, 1], got "
                               f"{settings.vllm_gpu_memory_utilization!r}")
    if isinstance(settings, GrpoSettings) and (settings.generations < 2 or settings.batch % settings.generations):
        raise AgentConfigError(f"batch ({settings.batch}) must be a multiple of generations ({settings.generations}), "
                               "and generations at least 2 (GRPO compares completions within a group)")


def _dataset_names(settings: SftSettings | GrpoSettings) -> tuple[str, ...]:
    if isinstance(settings, GrpoSettings):
        return ("states.jsonl",)
    if settings.warmup and not Path(settings.dataset).is_dir():
        raise AgentConfigError(f"warmup: true needs dataset to be the directory `agent dataset` wrote, not the file "
                               f"{settings.dataset}")
    return ("sft.jsonl", "warmup.jsonl") if settings.warmup else ("sft.jsonl",)


def dataset_file(path: str, name: str) -> Path:
    """The JSONL file a config's ``dataset`` names: the file itself, or ``name`` inside the directory."""
    given = Path(path)
    found = given / name if given.is_dir() else given
    if not found.is_file():
        hint = " --operator-edits N" if name == "warmup.jsonl" else ""
        raise AgentConfigError(f"dataset: {found} does not exist (write it with `evosearch agent dataset{hint}`)")
    return found


def _lora(settings: LoraSettings):
    from peft import LoraConfig

    targets = settings.target_modules
    return LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules="all-linear" if targets == ("all-linear",) else list(targets),
                      modules_to_save=list(settings.modules_to_save) or None, task_type="CAUSAL_LM")


def _load(base_model: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_model, local_files_only=True)
    return model, tokenizer


@dataclass
class TrainReport:
    """What a training run leaves: where the adapter is, its metrics over steps, how long it took."""

    output: str
    steps: int
    wall_s: float
    metrics: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _finish(trainer, output: Path, started: float, extra: dict | None = None) -> TrainReport:
    """Save the adapter, the tokenizer and the metrics (``metrics.jsonl``: one line per logged step)."""
    trainer.save_model(str(output))
    history = [{k: v for k, v in entry.items() if isinstance(v, int | float) and math.isfinite(v)}
               for entry in trainer.state.log_history]
    with open(output / "metrics.jsonl", "w", encoding="utf-8") as f:
        for entry in history:
            f.write(json.dumps(entry) + "\n")
    report = TrainReport(str(output), int(trainer.state.global_step), time.perf_counter() - started, history)
    (output / "report.json").write_text(json.dumps({**report.to_dict(), **(extra or {})}, indent=2) + "\n")
    return report


def train_sft(settings: SftSettings) -> TrainReport:
    """Supervised fine-tuning of a LoRA adapter on the archive's good edits."""
    require_extra()
    from datasets import concatenate_datasets, load_dataset
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    model, tokenizer = _load(settings.base_model)
    # One file at a time: the rows' ``meta`` differ in shape between the files, and only
    # ``prompt`` and ``completion`` are trained on. An empty file (a small campaign may have
    # no improving child) is no error while the other has rows.
    files = [dataset_file(settings.dataset, name) for name in _dataset_names(settings)]
    files = [f for f in files if f.read_text(encoding="utf-8").strip()]
    if not files:
        raise AgentConfigError(f"dataset: no rows to train on in {settings.dataset}")
    data = concatenate_datasets([load_dataset("json", data_files=str(f), split="train")
                                 .select_columns(["prompt", "completion"]) for f in files])
    output = Path(settings.output)
    args = SFTConfig(output_dir=str(output), max_steps=settings.steps, per_device_train_batch_size=settings.batch,
                     learning_rate=settings.learning_rate, max_length=settings.max_length, logging_steps=1,
                     save_strategy="no", report_to="none", seed=settings.seed, use_cpu=not _cuda(), bf16=_bf16(),
                     gradient_checkpointing=settings.gradient_checkpointing,
                     completion_only_loss=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         peft_config=_lora(settings.lora))
    trainer.train()
    return _finish(trainer, output, started)


def train_grpo(settings: GrpoSettings, reward=None) -> TrainReport:
    """Step-wise GRPO: each prompt is a parent at one step of a campaign; the reward is the evaluator's.

    ``reward``: a TRL reward function (default: :class:`evosearch.agent.reward.RewardModule` with
    the config's suite); its ``stats()``, when it has one, are saved with the metrics (the rate
    of well-formed, applicable edits among them).
    """
    require_extra()
    from datasets import load_dataset
    from trl import GRPOConfig, GRPOTrainer

    started = time.perf_counter()
    model, tokenizer = _load(settings.base_model)
    peft_config = _lora(settings.lora)
    if settings.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, settings.adapter, is_trainable=True)
        peft_config = None
    if reward is None:
        from evosearch.agent.reward import RewardConfig, RewardModule

        reward = RewardModule(RewardConfig(suite=settings.reward_suite, alpha=settings.reward_alpha,
                                           stages=settings.reward_stages, parallel=settings.reward_parallel))
    data = load_dataset("json", data_files=str(dataset_file(settings.dataset, "states.jsonl")), split="train")
    keep = [c for c in ("prompt", "parent_source", "parent_score", "kind") if c in data.column_names]
    data = data.select_columns(keep)
    output = Path(settings.output)
    args = GRPOConfig(output_dir=str(output), max_steps=settings.steps, per_device_train_batch_size=settings.batch,
                      num_generations=settings.generations, learning_rate=settings.learning_rate,
                      beta=settings.beta, temperature=settings.temperature,
                      max_completion_length=settings.max_completion_length, logging_steps=1, save_strategy="no",
                      report_to="none", seed=settings.seed, use_cpu=not _cuda(), bf16=_bf16(), log_completions=False,
                      gradient_checkpointing=settings.gradient_checkpointing, use_vllm=settings.use_vllm,
                      **({"vllm_mode": "colocate", "vllm_gpu_memory_utilization": settings.vllm_gpu_memory_utilization}
                         if settings.use_vllm else {}))
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=data,
                          processing_class=tokenizer, peft_config=peft_config)
    trainer.train()
    stats = reward.stats() if hasattr(reward, "stats") else {}
    return _finish(trainer, output, started, {"reward_stats": stats})


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16() -> bool:
    """bf16 where the GPU has it (Ampere and later); CPU training stays in float32."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
