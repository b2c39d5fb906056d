"""``evosearch agent sft|grpo``: configs checked before loading, and a few real TRL steps on the tiny model.

The datasets come from the session's real tiny campaign (``finished``); GRPO's reward is the
real :class:`RewardModule` through the sandbox on tests/data/tiny.yaml, so these tests run
the whole trainer path at the smallest size that still trains.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SUITE, cli_in_process

from evosearch.agent.dataset import build_datasets
from evosearch.agent.reward import RewardConfig, RewardModule
from evosearch.agent.tiny import build_tiny_model
from evosearch.agent.train import (
    AgentConfigError,
    GrpoSettings,
    LoraSettings,
    SftSettings,
    load_settings,
    train_grpo,
    train_sft,
)

TINY_LORA = LoraSettings(rank=4, alpha=8, dropout=0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llm")


@pytest.fixture(scope="module")
def data(finished, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("agent-data")
    summary = build_datasets([finished[0]], out)
    assert summary.states > 0
    if summary.sft_rows == 0:  # a tiny campaign may have no improving child: the states still make prompts
        rows = [json.loads(line) for line in (out / "states.jsonl").read_text().splitlines()]
        with open(out / "sft.jsonl", "w") as f:
            for row in rows:
                f.write(json.dumps({"prompt": row["prompt"], "completion": [
                    {"role": "assistant", "content": "<<<<<<< SEARCH\nENT_COEF = 0.01\n=======\nENT_COEF = 0.02\n"
                                                     ">>>>>>> REPLACE"}]}) + "\n")
    return out


def test_sft_trains_an_adapter_and_saves_its_metrics(tiny, data, tmp_path):
    report = train_sft(SftSettings(base_model=str(tiny), dataset=str(data), output=str(tmp_path / "sft"),
                                   lora=TINY_LORA, steps=3, batch=1))
    assert report.steps == 3
    assert (tmp_path / "sft" / "adapter_config.json").is_file()
    losses = [m["loss"] for m in report.metrics if "loss" in m]
    assert losses and all(loss > 0 for loss in losses)
    assert json.loads((tmp_path / "sft" / "report.json").read_text())["steps"] == 3


def test_sft_with_warmup_trains_on_both_files(tiny, finished, tmp_path):
    data = tmp_path / "data"
    summary = build_datasets([finished[0]], data, operator_edits=2)
    assert summary.warmup_rows > 0
    report = train_sft(SftSettings(base_model=str(tiny), dataset=str(data), output=str(tmp_path / "sft"),
                                   lora=TINY_LORA, steps=1, batch=1, warmup=True))
    # One row a step: the epoch after one step is 1 / (the rows trained on).
    assert report.metrics[0]["epoch"] == pytest.approx(1 / (summary.sft_rows + summary.warmup_rows))


def test_warmup_without_its_file_is_one_clear_error(tiny, data, tmp_path):
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump({"base_model": str(tiny), "dataset": str(data), "output": "o", "warmup": True}))
    with pytest.raises(AgentConfigError, match=r"warmup.jsonl does not exist .*--operator-edits N"):
        load_settings(config, SftSettings)


def test_grpo_trains_from_the_sft_adapter_with_the_evaluators_reward(tiny, data, tmp_path):
    train_sft(SftSettings(base_model=str(tiny), dataset=str(data), output=str(tmp_path / "sft"), lora=TINY_LORA,
                          steps=1, batch=1))
    reward = RewardModule(RewardConfig(suite=TINY_SUITE, stages="smoke"))
    report = train_grpo(GrpoSettings(base_model=str(tiny), dataset=str(data), output=str(tmp_path / "grpo"),
                                     adapter=str(tmp_path / "sft"), steps=2, batch=2, generations=2,
                                     max_completion_length=24), reward=reward)
    assert report.steps == 2 and (tmp_path / "grpo" / "adapter_config.json").is_file()
    logged = {k for m in report.metrics for k in m}
    assert "reward" in logged and "reward_std" in logged
    stats = json.loads((tmp_path / "grpo" / "report.json").read_text())["reward_stats"]
    assert stats["edits"] >= 4  # 2 steps x 2 completions, every one scored by the reward module


def test_a_config_with_a_missing_model_is_one_clear_error(tmp_path, data):
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump({"base_model": "no/such/model", "dataset": str(data), "output": "out"}))
    with pytest.raises(AgentConfigError, match="not a local model directory"):
        load_settings(config, SftSettings)
    run = cli_in_process("agent", "sft", str(config))
    assert run.returncode == 2 and "not a local model directory" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(("raw", "message"), [
    ({"dataset": "x", "output": "y"}, "missing required key(s) base_model"),
    ({"base_model": "m", "dataset": "x", "output": "y", "stepz": 3}, "unknown key(s) stepz"),
    ({"base_model": "m", "dataset": "x", "output": "y", "lora": {"rnk": 3}}, "unknown lora key(s) rnk"),
])
def test_config_mistakes_are_named(tmp_path, raw, message):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(AgentConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(config, SftSettings)


def test_a_gpu_share_outside_0_1_is_named(tiny, data, tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text(yaml.safe_dump({"base_model": str(tiny), "dataset": str(data), "output": "o",
                                      "vllm_gpu_memory_utilization": 1.5}))
    with pytest.raises(AgentConfigError, match="vllm_gpu_memory_utilization"):
        load_settings(config, GrpoSettings)


def test_sft_with_gradient_checkpointing_trains(tiny, data, tmp_path):
    report = train_sft(SftSettings(base_model=str(tiny), dataset=str(data), output=str(tmp_path / "sft"),
                                   lora=TINY_LORA, steps=1, batch=1, gradient_checkpointing=True))
    assert report.steps == 1 and report.metrics[0]["loss"] > 0


def test_grpo_batch_must_hold_whole_groups(tiny, data, tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text(yaml.safe_dump({"base_model": str(tiny), "dataset": str(data), "output": "o", "batch": 3,
                                      "generations": 2}))
    with pytest.raises(AgentConfigError, match="multiple of generations"):
        load_settings(config, GrpoSettings)
