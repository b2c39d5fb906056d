"""The tiny test model: its tokenizer keeps the edit markers whole, its larger shapes, its pretraining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evosearch.agent.tiny import EDIT_MARKERS, build_tiny_model, pretrain_tiny

pytest.importorskip("transformers")

EDIT = "<<<<<<< SEARCH\nVF_COEF = 0.5\n=======\nVF_COEF = 0.25\n>>>>>>> REPLACE\n"


@pytest.fixture(scope="module")
def windowed(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "windowed", hidden_size=32, window=64)


def test_each_edit_marker_is_one_token_and_text_round_trips(windowed):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(windowed)
    ids = tokenizer(EDIT, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == EDIT
    for marker in EDIT_MARKERS:
        assert len(tokenizer(marker, add_special_tokens=False)["input_ids"]) == 1
    assert len(tokenizer) <= 1000


def test_a_window_gives_a_sliding_window_model_and_another_recipe(windowed, tmp_path):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(windowed)
    assert config.model_type == "mistral" and config.sliding_window == 64 and config.hidden_size == 32
    default = build_tiny_model(tmp_path / "default")
    assert AutoConfig.from_pretrained(default).model_type == "llama"
    # The same folder asked for another shape is rebuilt, not reused.
    build_tiny_model(tmp_path / "default", hidden_size=32, window=64)
    assert AutoConfig.from_pretrained(tmp_path / "default").model_type == "mistral"


def test_pretraining_learns_the_texts(windowed, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = pretrain_tiny(windowed, [EDIT], tmp_path / "pre", steps=150, batch=4, learning_rate=1e-2)
    record = json.loads((out / "pretrain.json").read_text())
    assert record["loss_last"] < record["loss_first"] / 3
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt = torch.tensor([[tokenizer.bos_token_id]])
    with torch.no_grad():
        greedy = model.generate(prompt, do_sample=False, max_new_tokens=40)[0, 1:]
    # From nothing but the start token it writes the text it learnt (the start at least, exactly).
    assert tokenizer.decode(greedy, skip_special_tokens=True).startswith(EDIT[:40])


def test_pretraining_bad_input(windowed, tmp_path):
    with pytest.raises(ValueError, match="texts"):
        pretrain_tiny(windowed, [], tmp_path / "x", steps=1)
