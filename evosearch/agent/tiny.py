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

from evosearch.agent.edits import DIVIDER, REPLACE_MARK, SEARCH_MARK
from evosearch.agent.serve import quiet_progress

__all__ = ["CHAT_TEMPLATE", "EDIT_MARKERS", "SPECIAL_TOKENS", "VOCAB_SIZE", "build_tiny_model", "default_corpus",
           "pretrain_tiny"]

VOCAB_SIZE = 1000
#: The edit format's markers, one token each. A real code model's tokenizer has merges for runs
#: of ``<``, ``=`` and ``>`` (diffs and merge conflicts are all over its training data); a BPE
#: learnt from this repository alone has none, and a model this small cannot count seven ``<``.
EDIT_MARKERS = (SEARCH_MARK, DIVIDER, REPLACE_MARK)
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
DEFAULT_SHAPE = {"hidden_size": 64, "layers": 2, "window": None}
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
    return {"format": 2, "seed": seed, "vocab_size": VOCAB_SIZE, "edit_markers": list(EDIT_MARKERS),
            "corpus_sha256": digest}


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
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - len(EDIT_MARKERS), special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                        additional_special_tokens=[f"<|{role}|>" for role in ROLES])
    tokenizer.add_tokens(list(EDIT_MARKERS))  # plain tokens: they decode as the text they stand for
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _random_model(tokenizer, seed: int, shape: dict):
    """A small causal LM sized to the tokenizer, with random weights drawn from ``seed``.

    A Llama by default; with a ``window`` a Mistral, whose sliding-window attention sees only
    the last ``window`` tokens: a model this small cannot use a 3,000-token prompt anyway, and
    with the window what it learns on short texts holds at any position in a long one.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    width, window = shape["hidden_size"], shape["window"]
    common = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=shape["layers"],
                  num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tokenizer),
                  max_position_embeddings=8192 if window else 4096, bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    if window:
        model = MistralForCausalLM(MistralConfig(sliding_window=window, **common))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common))
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


def build_tiny_model(out_dir: Path, corpus: list[str] | None = None, *, seed: int = 0, hidden_size: int = 64,
                     layers: int = 2, window: int | None = None) -> Path:
    """Build (or reuse) the tiny model in ``out_dir`` and return ``out_dir``.

    ``AutoTokenizer.from_pretrained(out_dir)`` and ``AutoModelForCausalLM.from_pretrained(out_dir)``
    load it. ``hidden_size``, ``layers`` and ``window`` (see :func:`_random_model`) size a larger
    stand-in for a learning check. Idempotent: a complete folder built from the same recipe is reused as it
    is; the build goes to a temporary sibling folder that is renamed into place, so an
    interrupted build never leaves a folder that looks complete.
    """
    out_dir = Path(out_dir)
    texts = default_corpus() if corpus is None else [str(text) for text in corpus]
    if not any(text.strip() for text in texts):
        raise ValueError("the corpus for the tiny tokenizer is empty")
    shape = {"hidden_size": hidden_size, "layers": layers, "window": window}
    recipe = _recipe(texts, seed) | ({} if shape == DEFAULT_SHAPE else {"shape": shape})
    if _is_complete(out_dir, recipe):
        return out_dir
    _claim(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        tokenizer = _train_tokenizer(texts)
        tokenizer.save_pretrained(staging)
        with quiet_progress():
            _random_model(tokenizer, seed, shape).save_pretrained(staging)
        (staging / MARKER).write_text(json.dumps(recipe))
        if _is_complete(out_dir, recipe):  # built meanwhile by another process: keep theirs
            return out_dir
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def pretrain_tiny(model_dir: Path, texts: list[str], out_dir: Path, *, steps: int, batch: int = 16,
                  learning_rate: float = 3e-3, max_tokens: int = 256, seed: int = 0) -> Path:
    """Next-token training of the whole tiny model on ``texts``; the result is saved to ``out_dir``.

    Why: a real proposer starts from a model pretrained on code, which already writes Python and
    diffs; a random tiny model does not, and SFT on a few hundred rows behind 3,000-token prompts
    cannot teach it. This is the stand-in for that pretraining: short texts (code, edits), each
    ``bos + text + eos`` cut to ``max_tokens``, sampled with replacement, AdamW with a linear
    decay. With a sliding-window model (``build_tiny_model(window=...)``) what it learns here
    holds behind a prompt of any length.
    """
    import random

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if steps < 1 or batch < 1 or not texts:
        raise ValueError("pretraining needs texts, and steps and batch of at least 1")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    model.train()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    encoded = [[tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens - 2],
                tokenizer.eos_token_id] for text in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    losses = []
    for _ in range(steps):
        picks = [encoded[rng.randrange(len(encoded))] for _ in range(batch)]
        width = max(map(len, picks))
        ids = torch.full((batch, width), tokenizer.pad_token_id)
        labels = torch.full((batch, width), -100)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for row, tokens in enumerate(picks):
            ids[row, :len(tokens)] = labels[row, :len(tokens)] = torch.tensor(tokens)
            mask[row, :len(tokens)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    out_dir = Path(out_dir)
    with quiet_progress():
        model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "pretrain.json").write_text(json.dumps({"steps": steps, "batch": batch, "texts": len(texts),
                                                       "loss_first": losses[0], "loss_last": losses[-1]}))
    return out_dir
