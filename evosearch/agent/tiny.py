"""A tiny random causal LM with a real chat tokenizer, built locally in seconds: the agent's test model.

Why: the agent's pieces (``evosearch agent serve``, the SFT and GRPO trainers) need a model that
``transformers`` loads like any other, with a tokenizer that ``apply_chat_template`` works on,
and tests and docs must never download one. This builds both from this repository's own text:
a byte-level BPE tokenizer (~1,000 tokens, trained on the rule programs and the prompt
templates, so a campaign's prompts tokenize to realistic lengths) and a randomly initialised
2-layer Llama on top. Its answers are noise; what it exercises is the plumbing.

Byte-level BPE means every string round-trips, whatever characters a prompt holds. The chat
template is plain (no ``{% generation %}`` markers): ``<|bos|>``, then per message
``<|ROLE|>\\n CONTENT <|eos|>\\n``, and ``<|assistant|>\\n`` as the generation prompt, so a
generation ends at ``<|eos|>`` like a real chat model's turn.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from evosearch.agent.serve import quiet_progress

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "VOCAB_SIZE", "build_tiny_model", "default_corpus"]

VOCAB_SIZE = 1000
BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLES = ("system", "user", "assistant")
SPECIAL_TOKENS = (BOS, EOS, PAD, *(f"<|{role}|>" for role in ROLES))
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
MARKER = "evosearch-tiny.json"  # written last: its presence (with the same recipe) means the folder is complete

_ROOT = Path(__file__).resolve().parents[2]


def default_corpus() -> list[str]:
    """The texts the tokenizer learns from: ``programs/rules/*.py`` and the prompt templates.

    From an installed package (no ``programs/`` beside it) only the templates remain, which is
    still enough text for the vocabulary.
    """
    prompts = Path(__file__).resolve().parents[1] / "propose" / "prompts"
    files = sorted((_ROOT / "programs" / "rules").glob("*.py")) + sorted(prompts.glob("*.txt"))
    return [path.read_text(encoding="utf-8") for path in files]


def _recipe(corpus: list[str], seed: int) -> dict:
    """What determines the model: a folder built from another recipe is rebuilt, not reused."""
    digest = hashlib.sha256("\0".join(corpus).encode()).hexdigest()
    return {"format": 1, "seed": seed, "vocab_size": VOCAB_SIZE, "corpus_sha256": digest}


def _is_complete(out_dir: Path, recipe: dict) -> bool:
    try:
        return json.loads((out_dir / MARKER).read_text()) == recipe
    except (OSError, ValueError):
        return False


def _train_tokenizer(corpus: list[str]):
    """A byte-level BPE tokenizer with the special tokens and the chat template, as transformers loads it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                        additional_special_tokens=[f"<|{role}|>" for role in ROLES])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _random_llama(tokenizer, seed: int):
    """A 2-layer Llama sized to the tokenizer, with random weights drawn from ``seed``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    return model


def _claim(out_dir: Path) -> None:
    """Refuse to replace a folder that holds something other than an earlier tiny model."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise ValueError(f"{out_dir} is not empty and holds no tiny model ({MARKER}): choose another folder")


def build_tiny_model(out_dir: Path, corpus: list[str] | None = None, *, seed: int = 0) -> Path:
    """Build (or reuse) the tiny model in ``out_dir`` and return ``out_dir``.

    ``AutoTokenizer.from_pretrained(out_dir)`` and ``AutoModelForCausalLM.from_pretrained(out_dir)``
    load it. Idempotent: a complete folder built from the same corpus and seed is reused as it
    is; the build goes to a temporary sibling folder that is renamed into place, so an
    interrupted build never leaves a folder that looks complete.
    """
    out_dir = Path(out_dir)
    texts = default_corpus() if corpus is None else [str(text) for text in corpus]
    if not any(text.strip() for text in texts):
        raise ValueError("the corpus for the tiny tokenizer is empty")
    recipe = _recipe(texts, seed)
    if _is_complete(out_dir, recipe):
        return out_dir
    _claim(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        tokenizer = _train_tokenizer(texts)
        tokenizer.save_pretrained(staging)
        with quiet_progress():
            _random_llama(tokenizer, seed).save_pretrained(staging)
        (staging / MARKER).write_text(json.dumps(recipe))
        if _is_complete(out_dir, recipe):  # built meanwhile by another process: keep theirs
            return out_dir
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
