"""REINFORCE with a learned value baseline.

Williams 1992, "Simple statistical gradient-following algorithms for connectionist
reinforcement learning" (Machine Learning 8), with the state-value baseline of Sutton &
Barto (2018, §13.4). The advantage is the Monte Carlo return minus the baseline (GAE with
lambda = 1, bootstrapped only where the rollout is cut); no ratio, no clipping, no entropy.
"""

import torch

# EVOLVE-BLOCK-START
VF_COEF = 0.5


def advantages(rewards, values, dones, last_value, gamma, lam):
    """Discounted Monte Carlo return minus the value baseline (lambda fixed to 1)."""
    adv = torch.zeros_like(rewards)
    running = last_value
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * running * (1.0 - dones[t])
        adv[t] = running - values[t]
    return adv


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss + VF_COEF * v_loss
# EVOLVE-BLOCK-END
