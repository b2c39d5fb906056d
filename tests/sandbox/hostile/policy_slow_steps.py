"""Answer every batch inside the answer timeout, but so slowly that the episodes cannot end inside
the job's wall-clock limit: that limit must still end the evaluation, wherever the referee waits."""

import time

import numpy as np

ENV_ID = "CartPole-v1"


def act(obs):
    time.sleep(0.5)
    x, x_dot, theta, theta_dot = obs[:, 0], obs[:, 1], obs[:, 2], obs[:, 3]
    return (1.0 * theta + 0.5 * theta_dot + 0.05 * x + 0.2 * x_dot > 0).astype(np.int64)
