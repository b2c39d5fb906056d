"""Policy campaigns: the same loop, archive and export serve programs that act instead of learn."""

import importlib.util
import sqlite3
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import ROOT

from evosearch.archive.store import Archive
from evosearch.config import ConfigError, config_from_dict
from evosearch.export import export_program

SUITE = str(ROOT / "tests" / "data" / "policy_tiny.yaml")
POLICIES = ROOT / "programs" / "policies"


def policy_config(name: str, seed: Path, **overrides):
    raw = {
        "name": name, "kind": "policy", "seeds": [str(seed)], "parallel": 2, "rng_seed": 3,
        "evaluation": {"suite": SUITE, "smoke_timeout_s": 10, "task_timeout_s": 60},
        "budget": {"max_evals": 8},
        "archive": {"islands": 1, "descriptors": [{"name": "code_size", "min": 20, "max": 200, "bins": 4},
                                                   {"name": "action_smoothness", "min": 0, "max": 1, "bins": 4}]},
        "operators": {"enabled": ["ast.constant", "ast.operator"]},
        **overrides,
    }
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def pendulum_campaign(tmp_path_factory):
    from evosearch.campaign import Campaign

    db = tmp_path_factory.mktemp("policy") / "p.db"
    campaign = Campaign(policy_config("pendulum", POLICIES / "pendulum.py"), db_path=db)
    summary = campaign.run()
    campaign.close()
    return db, summary


def test_a_policy_campaign_evaluates_mutants_of_its_seed(pendulum_campaign):
    db, summary = pendulum_campaign
    assert summary.evaluations == 8
    archive = Archive(db)
    rows = archive.list_programs()
    assert {r["kind"] for r in rows} == {"policy"}
    assert summary.outcomes.get("ok", 0) >= 2 and summary.best is not None


def test_a_rule_suite_for_a_policy_campaign_is_refused():
    with pytest.raises(ConfigError, match="scores rule programs"):
        policy_config("x", POLICIES / "cartpole.py", evaluation={"suite": "quick"})


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def play(module, episodes: int, seed: int) -> list[float]:
    """A plain gymnasium loop, as a user would write it: nothing of evosearch."""
    env = gym.make(module.ENV_ID)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(module.act_one(observation))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def test_an_exported_policy_plays_a_plain_gymnasium_loop_at_its_archived_score(tmp_path):
    from evosearch.campaign import Campaign

    db = tmp_path / "c.db"
    campaign = Campaign(policy_config("cartpole", POLICIES / "cartpole.py", budget={"max_evals": 2}), db_path=db)
    campaign.run()
    campaign.close()
    archive = Archive(db)
    [seed] = [r for r in archive.list_programs(operator="seed")]
    path = tmp_path / f"policy_{seed['id']}.py"
    path.write_text(export_program(archive, int(seed["id"])))
    text = path.read_text()
    assert "import torch" not in text and "act_one" in text and "gym.make(policy.ENV_ID)" in text
    module = load(path)
    row = archive.program(int(seed["id"]))
    # The archive's CI is over normalised returns (tiny suite: random 22, reference 500).
    low, high = 22.0 + np.array([row["ci_low"], row["ci_high"]]) * (500.0 - 22.0)
    returns = play(module, 5, seed=100)
    assert low - 1e-6 <= np.mean(returns) <= high + 1e-6, (returns, low, high)


def test_an_exported_continuous_policy_answers_one_observation(pendulum_campaign, tmp_path):
    db, _ = pendulum_campaign
    archive = Archive(db)
    best = max((r for r in archive.list_programs() if r["outcome"] == "ok"), key=lambda r: r["score"])
    path = tmp_path / f"policy_{best['id']}.py"
    path.write_text(export_program(archive, int(best["id"])))
    module = load(path)
    action = module.act_one(np.array([1.0, 0.0, 0.0], dtype=np.float32))
    assert action.shape == (1,) and action.dtype == np.float32
    assert np.mean(play(module, 3, seed=7)) > -600  # random play is about -1200


def test_the_llm_proposer_gets_the_policy_contract_and_its_edits_are_played(tmp_path):
    from fake_openai import FakeOpenAI

    from evosearch.campaign import Campaign

    def answer(request: dict) -> str:
        gain = 0.5 if "K_ANGLE_VEL = 0.0 " in request["messages"][1]["content"] else 0.7
        old = "0.0" if gain == 0.5 else "0.5"
        return (f"Damp the pole.\n```python\n<<<<<<< SEARCH\nK_ANGLE_VEL = {old}  # pole angular velocity (rad/s)\n"
                f"=======\nK_ANGLE_VEL = {gain}  # pole angular velocity (rad/s)\n>>>>>>> REPLACE\n```\n")

    with FakeOpenAI(answer) as server:
        llm = {"models": [{"model": "scripted", "base_url": server.base_url, "weight": 1000.0, "timeout_s": 5.0,
                           "max_retries": 0}], "max_attempts": 1, "max_in_flight": 1}
        config = policy_config("llm-policy", POLICIES / "seeds" / "cartpole_weak.py", parallel=1, llm=llm,
                               budget={"max_evals": 3})
        campaign = Campaign(config, db_path=tmp_path / "l.db")
        campaign.run()
        campaign.close()
        prompts = [r.json for r in server.requests if r.path.endswith("/chat/completions")]
    archive = Archive(tmp_path / "l.db")
    [seed] = archive.list_programs(operator="seed")
    llm_programs = archive.list_programs(operator="llm")
    assert llm_programs and all(p["kind"] == "policy" for p in llm_programs)
    system = prompts[0]["messages"][0]["content"]
    assert "def act(obs)" in system and "b.logp" not in system
    best = max(p["score"] for p in llm_programs if p["outcome"] == "ok")
    assert best > 0.5  # the damping term turns the seed's 42 steps (score 0.08) into hundreds



def test_a_search_that_only_remakes_what_it_has_stops_with_a_reason(tmp_path, monkeypatch):
    """Scaling the weak seed's constants never changes what it does (its only non-zero gain is a
    sign test), so every child is a duplicate, and duplicates are not evaluations: without a
    stop the run would never reach its budget."""
    import evosearch.campaign as campaign_module

    monkeypatch.setattr(campaign_module, "MAX_DUPLICATE_STREAK", 10)
    config = policy_config("stuck", POLICIES / "seeds" / "cartpole_weak.py", parallel=1,
                           operators={"enabled": ["ast.constant"]}, budget={"max_evals": 5})
    campaign = campaign_module.Campaign(config, db_path=tmp_path / "s.db")
    summary = campaign.run()
    campaign.close()
    assert summary.evaluations == 1 and "all behaved like evaluated programs" in summary.stop_reason
    assert summary.outcomes.get("duplicate", 0) >= 10


def test_an_llm_written_policy_that_behaves_like_its_parent_is_caught_at_the_probe(tmp_path, monkeypatch):
    """Scaling the weak seed's only gain changes its source, not its actions: the LLM proposer's
    fingerprint check (the policy's actions on the probe batch, not a rule's probe) must see the
    twin before it is stored, and send the model back a duplicate error."""
    from fake_openai import FakeOpenAI

    import evosearch.campaign as campaign_module

    monkeypatch.setattr(campaign_module, "MAX_DUPLICATE_STREAK", 4)
    answer = ("Push harder.\n```python\n<<<<<<< SEARCH\nK_ANGLE = 1.0  # pole angle (rad)\n=======\n"
              "K_ANGLE = 3.0  # pole angle (rad)\n>>>>>>> REPLACE\n```\n")
    with FakeOpenAI([answer]) as server:
        llm = {"models": [{"model": "scripted", "base_url": server.base_url, "weight": 1000.0, "timeout_s": 5.0,
                           "max_retries": 0}], "max_attempts": 1, "max_in_flight": 1}
        config = policy_config("llm-twin", POLICIES / "seeds" / "cartpole_weak.py", parallel=1, llm=llm,
                               operators={"enabled": ["ast.constant"]}, budget={"max_evals": 3, "minutes": 2})
        campaign = campaign_module.Campaign(config, db_path=tmp_path / "t.db")
        campaign.run()
        campaign.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    calls = conn.execute("SELECT status, error FROM llm_calls").fetchall()
    assert calls and {status for status, _ in calls} == {"duplicate"}, calls
    assert Archive(tmp_path / "t.db").list_programs(operator="llm") == []  # no twin was stored, let alone trained
