"""Trusted scoring: measure the returns of trained weights, never running candidate code.

The training job (which ran the candidate) only hands over a plain ``.npz`` of weights; this
module rebuilds the fixed CleanRL architecture from them and plays evaluation episodes with
its own environment and its own return accounting, so a candidate cannot forge its score.
"""

from __future__ import annotations

import numpy as np
import torch

from evosearch.envs.vector import VectorEnv
from evosearch.train.networks import Ensemble, Spec, sample_actions


def load_weights(path: str) -> dict[str, np.ndarray]:
    """Read a weights file written by a training job; refuses pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: np.asarray(data[k], dtype=np.float32) for k in data.files}


def score_weights(
    weights: dict[str, np.ndarray], env_id: str, episodes: int, seed: int, hidden: int | None = None
) -> np.ndarray:
    """Mean undiscounted return per seed over ``episodes`` episodes, sampling from the policy.

    Each of the ``episodes`` environments of a seed contributes its first completed episode.
    """
    seeds = int(weights["actor_w0"].shape[0])
    env = VectorEnv(env_id, seeds * episodes, seed=10_000_019 + seed)
    hidden = hidden or int(weights["actor_w0"].shape[2])
    spec = Spec(env.spec.obs_dim, env.spec.act_dim, env.spec.discrete, hidden)
    for key, array in weights.items():
        if not np.isfinite(array).all():
            raise ValueError(f"weights {key} hold NaN or infinite values")
    model = Ensemble.from_numpy(spec, weights)
    generator = torch.Generator().manual_seed(seed)
    obs = torch.from_numpy(env.reset()).view(seeds, episodes, -1)
    running = np.zeros(seeds * episodes)
    finished = np.zeros(seeds * episodes, dtype=bool)
    final = np.zeros(seeds * episodes)
    act_shape = () if spec.discrete else (spec.act_dim,)
    while not finished.all():
        actions, _, _ = sample_actions(model, obs, generator)
        next_obs, reward, terminated, truncated, real = env.step(actions.reshape((-1,) + act_shape).numpy())
        running += np.where(real & ~finished, reward, 0.0)
        ended = (terminated | truncated) & ~finished
        final[ended] = running[ended]
        finished |= ended
        obs = torch.from_numpy(next_obs).view(seeds, episodes, -1)
    env.close()
    return final.reshape(seeds, episodes).mean(1)


def random_returns(env_id: str, episodes: int, seed: int) -> np.ndarray:
    """Returns of the uniform random policy, the 0 of the normalised score."""
    env = VectorEnv(env_id, episodes, seed=20_000_003 + seed)
    rng = np.random.default_rng(seed)
    env.reset()
    running, final = np.zeros(episodes), np.zeros(episodes)
    finished = np.zeros(episodes, dtype=bool)
    while not finished.all():
        if env.discrete:
            actions = rng.integers(0, env.spec.act_dim, size=episodes)
        else:
            actions = rng.uniform(env._low, env._high, size=(episodes, env.spec.act_dim))
        _, reward, terminated, truncated, real = env.step(actions)
        running += np.where(real & ~finished, reward, 0.0)
        ended = (terminated | truncated) & ~finished
        final[ended] = running[ended]
        finished |= ended
    env.close()
    return final
