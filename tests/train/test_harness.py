"""The batched trainer: deterministic, learns, trains Gaussian policies, scores from weights."""

import numpy as np
from conftest import rule_source

from evosearch.train.harness import TrainConfig, train
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
