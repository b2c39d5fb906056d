"""The batched trainer: deterministic, learns, trains Gaussian policies, scores from weights."""

import numpy as np
import torch
from conftest import rule_source

from evosearch.train.harness import TrainConfig, ended_episode_returns, train
from evosearch.train.rule import load_rule
from evosearch.train.score import random_returns, score_weights


def test_same_seeds_same_weights_and_returns():
    cfg = TrainConfig(env_id="CartPole-v1", total_steps=1024)
    a = train(load_rule(rule_source("ppo_clip")), cfg, [0, 1])
    b = train(load_rule(rule_source("ppo_clip")), cfg, [0, 1])
    for key in a.weights:
        np.testing.assert_array_equal(a.weights[key], b.weights[key])
    np.testing.assert_array_equal(score_weights(a.weights, "CartPole-v1", 3, 0),
                                  score_weights(b.weights, "CartPole-v1", 3, 0))


def test_seeds_train_to_different_agents():
    result = train(load_rule(rule_source("a2c")), TrainConfig(env_id="CartPole-v1", total_steps=1024), [0, 1])
    assert not np.array_equal(result.weights["actor_w0"][0], result.weights["actor_w0"][1])


def test_ppo_clip_learns_cartpole_beyond_random():
    result = train(load_rule(rule_source("ppo_clip")), TrainConfig(env_id="CartPole-v1", total_steps=20480), [0, 1])
    trained = score_weights(result.weights, "CartPole-v1", 8, 0)
    random = random_returns("CartPole-v1", 50, 0).mean()
    assert trained.mean() > 2 * random, (trained, random)
    assert len(result.curves) == 2 and len(result.curves[0]) == len(result.curve_steps) > 0


def test_gaussian_policy_trains_on_pendulum():
    result = train(load_rule(rule_source("ppo_clip")), TrainConfig(env_id="Pendulum-v1", total_steps=1024), [0])
    assert "actor_logstd" in result.weights
    returns = score_weights(result.weights, "Pendulum-v1", 2, 0)
    assert returns.shape == (1,) and np.isfinite(returns).all()


def test_ended_episode_returns_match_a_step_by_step_count():
    g = torch.Generator().manual_seed(0)
    steps, seeds, envs = 60, 3, 4
    rewards = torch.randn(steps, seeds, envs, generator=g)
    ended = torch.rand(steps, seeds, envs, generator=g) < 0.1
    ended[:, 2, 3] = False  # one env never ends: its return carries over
    running = torch.randn(seeds, envs, generator=g)
    sums, counts, carry = ended_episode_returns(rewards, ended, running)

    episode, want_sum, want_count = running.clone(), torch.zeros(seeds), torch.zeros(seeds)
    for t in range(steps):
        episode += rewards[t]
        want_sum += (episode * ended[t]).sum(1)
        want_count += ended[t].sum(1)
        episode[ended[t]] = 0.0
    torch.testing.assert_close(sums, want_sum, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(counts, want_count)
    torch.testing.assert_close(carry, episode, rtol=1e-5, atol=1e-4)


def test_envpool_backend_still_trains_and_scores():
    cfg = TrainConfig(env_id="CartPole-v1", total_steps=1024, backend="envpool")
    result = train(load_rule(rule_source("ppo_clip")), cfg, [0, 1])
    assert result.backend == "envpool"
    returns = score_weights(result.weights, "CartPole-v1", 3, 0, backend="envpool")
    assert returns.shape == (2,) and (returns >= 8).all()


def test_native_backend_trains_when_chosen_and_auto_keeps_envpool_on_cpu():
    rule = load_rule(rule_source("a2c"))
    assert train(rule, TrainConfig(env_id="Acrobot-v1", total_steps=512), [0]).backend == "envpool"
    result = train(rule, TrainConfig(env_id="Acrobot-v1", total_steps=1024, backend="native"), [0, 1])
    assert result.backend == "native" and result.env_steps == 1024
    assert np.isfinite(result.weights["actor_w0"]).all()
    returns = score_weights(result.weights, "Acrobot-v1", 2, 0, backend="native")
    assert returns.shape == (2,) and (returns >= -500).all()
