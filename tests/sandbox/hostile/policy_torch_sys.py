"""A policy that takes ``sys`` from torch (the rules' allow-list once let it) and looks for the referee in its process.

Policies may import numpy and math only: the static check rejects ``import torch`` and the
policy's minimal builtins refuse it. With both off, the program reaches ``sys.modules`` of its
job, and finds no environment and no referee there (they run in the host): it plays CartPole
honestly, and must score exactly like programs/policies/cartpole.py.
"""

import numpy as np
from torch import sys

ENV_ID = "CartPole-v1"
FOUND = [name for name in list(sys.modules) if "referee" in name or "gymnasium.envs" in name]


def act(obs):
    if any("Referee" in type(v).__name__ for m in FOUND for v in vars(sys.modules[m]).values()):
        return np.full(len(obs), 7)  # would break the rules if it had found a live referee to cheat with
    x, x_dot, theta, theta_dot = obs[:, 0], obs[:, 1], obs[:, 2], obs[:, 3]
    force = 1.0 * theta + 0.5 * theta_dot + 0.05 * x + 0.2 * x_dot
    return (force > 0).astype(np.int64)
