"""Trusted scoring: measure the returns of trained weights, never running candidate code.

The training job (which ran the candidate) only hands over a plain ``.npz`` of weights; this
module rebuilds the fixed CleanRL architecture from them and plays evaluation episodes with
its own environment and its own return accounting, so a candidate cannot forge its score.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from evosearch.envs.vector import VectorEnv
from evosearch.train.networks import Ensemble, Spec, sample_actions


class NonFiniteWeights(ValueError):
    """The trained weights hold NaN or infinite values: the candidate's training diverged."""


def load_weights(path: str) -> dict[str, np.ndarray]:
    """Read a weights file written by a training job; refuses pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: np.asarray(data[k], dtype=np.float32) for k in data.files}


def first_episode_returns(env: VectorEnv, choose: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Undiscounted return of each environment's first completed episode.

    Returns are summed here, from the environment's rewards, over real transitions only.
    """
    obs = env.reset()
    running, final = np.zeros(env.num_envs), np.zeros(env.num_envs)
    finished = np.zeros(env.num_envs, dtype=bool)
    while not finished.all():
        obs, reward, terminated, truncated, real = env.step(choose(obs))
        running += np.where(real & ~finished, reward, 0.0)
        ended = (terminated | truncated) & ~finished
        final[ended] = running[ended]
        finished |= ended
    return final


def score_weights(
    weights: dict[str, np.ndarray], env_id: str, episodes: int, seed: int, hidden: int | None = None
) -> np.ndarray:
    """Mean undiscounted return per seed over ``episodes`` episodes, sampling from the policy.

    Each of the ``episodes`` environments of a seed contributes its first completed episode.
    """
    for key, array in weights.items():
        if not np.isfinite(array).all():
            raise NonFiniteWeights(f"weights {key} hold NaN or infinite values")
    seeds = int(weights["actor_w0"].shape[0])
    env = VectorEnv(env_id, seeds * episodes, seed=10_000_019 + seed)
    hidden = hidden or int(weights["actor_w0"].shape[2])
    model = Ensemble.from_numpy(Spec(env.spec.obs_dim, env.spec.act_dim, env.spec.discrete, hidden), weights)
    generator = torch.Generator().manual_seed(seed)

    def choose(obs: np.ndarray) -> np.ndarray:
        actions, _, _ = sample_actions(model, torch.from_numpy(obs).view(seeds, episodes, -1), generator)
        return actions.reshape(seeds * episodes, *actions.shape[2:]).numpy()

    returns = first_episode_returns(env, choose)
    env.close()
    return returns.reshape(seeds, episodes).mean(1)


def random_returns(env_id: str, episodes: int, seed: int) -> np.ndarray:
    """Returns of the uniform random policy, the 0 of the normalised score."""
    env = VectorEnv(env_id, episodes, seed=20_000_003 + seed)
    rng = np.random.default_rng(seed)

    def choose(obs: np.ndarray) -> np.ndarray:
        if env.discrete:
            return rng.integers(0, env.spec.act_dim, size=episodes)
        return rng.uniform(env.action_low, env.action_high, size=(episodes, env.spec.act_dim))

    returns = first_episode_returns(env, choose)
    env.close()
    return returns
