"""The whole proposer loop on CPU: archive -> datasets -> SFT -> GRPO (real sandboxed reward) -> serve -> campaign.

Slow (``pytest -m slow``): every stage runs for real at the smallest size that still trains,
on the tiny random model, and the last campaign asks the served adapter for programs and
records its calls like any endpoint's.
"""

from __future__ import annotations

import math
import sqlite3
import threading

import pytest
from conftest import TINY_SUITE, campaign_config

from evosearch.agent.dataset import build_datasets
from evosearch.agent.reward import RewardConfig, RewardModule
from evosearch.agent.serve import make_server
from evosearch.agent.tiny import build_tiny_model
from evosearch.agent.train import GrpoSettings, LoraSettings, SftSettings, train_grpo, train_sft

pytestmark = pytest.mark.slow


def test_archive_to_a_campaign_that_calls_the_trained_proposer(tmp_path):
    from evosearch.campaign import Campaign

    searched = Campaign(campaign_config("searched", rng_seed=1, budget={"max_evals": 16}), db_path=tmp_path / "s.db")
    searched.run()
    searched.close()
    tiny = build_tiny_model(tmp_path / "tiny-llm")
    data = tmp_path / "data"
    # Whether 16 evaluations find a child that beats its parent is the search's luck (and the
    # order two parallel evaluations finish in): every scored edit and a few operator edits per
    # state make sure there are rows, which is what this test of the plumbing needs.
    summary = build_datasets([tmp_path / "s.db"], data, min_gain=-math.inf, operator_edits=2)
    assert summary.states > 0 and summary.sft_rows > 0 and summary.warmup_rows > 0, summary
    lora = LoraSettings(rank=4, alpha=8, dropout=0.0)
    sft = train_sft(SftSettings(base_model=str(tiny), dataset=str(data), output=str(tmp_path / "sft"), lora=lora,
                                steps=10, batch=1, warmup=True))
    assert sft.steps == 10
    reward = RewardModule(RewardConfig(suite=TINY_SUITE, stages="hurdle"))
    grpo = train_grpo(GrpoSettings(base_model=str(tiny), dataset=str(data), output=str(tmp_path / "grpo"),
                                   adapter=str(tmp_path / "sft"), steps=3, batch=4, generations=4,
                                   max_completion_length=64), reward=reward)
    assert grpo.steps == 3 and reward.stats()["edits"] >= 12

    server, url = make_server(str(tiny), adapter=str(tmp_path / "grpo"), model_name="proposer-grpo-v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        llm = {"models": [{"name": "proposer-grpo-v1", "model": "proposer-grpo-v1", "base_url": url,
                           "max_tokens": 64, "timeout_s": 120, "max_retries": 0}],
               "share": 0.5, "max_attempts": 1, "max_in_flight": 1}
        config = campaign_config("trained", parallel=1, operators={"enabled": ["ast.constant"]}, llm=llm)
        campaign = Campaign(config, db_path=tmp_path / "c.db")
        result = campaign.run(max_evals=4)
        campaign.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert result.evaluations == 4
    conn = sqlite3.connect(tmp_path / "c.db")
    calls = conn.execute("SELECT model, completion_tokens FROM llm_calls").fetchall()
    conn.close()
    assert calls and all(model == "proposer-grpo-v1" and tokens >= 1 for model, tokens in calls)
