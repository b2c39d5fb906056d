"""Plays CartPole like programs/policies/cartpole.py, after nesting 3,000 directories in its scratch directory.

A rule's code can no longer create files (its companion may not), but a policy's runs in its job,
which may write its scratch directory. ``shutil.rmtree`` in the host once died of RecursionError
on such a tree, and every later run with it (issue 15, breach 4): cleanup must remove the tree
without recursion, and the policy must score like the honest one. (Not in /tmp: in the rlimits
mode that is the host's own.)
"""

import os

import numpy as np

ENV_ID = "CartPole-v1"
DEPTH = 3000
_built = []


def _nest(root):
    fd = os.open(root, os.O_RDONLY)
    for _ in range(DEPTH):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)


def act(obs):
    if not _built:
        _built.append(True)
        _nest(".")
    x, x_dot, theta, theta_dot = obs[:, 0], obs[:, 1], obs[:, 2], obs[:, 3]
    force = 1.0 * theta + 0.5 * theta_dot + 0.05 * x + 0.2 * x_dot
    return (force > 0).astype(np.int64)
