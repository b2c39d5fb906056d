"""Policy campaigns: the same loop, archive and export serve programs that act instead of learn."""

import importlib.util
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

