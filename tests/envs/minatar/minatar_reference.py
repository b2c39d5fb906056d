"""What the MinAtar equivalence tests share: the reference game, its observation in our layout,
and the check that a policy's episodes have the same distribution in both.

The reference is the ``minatar`` package (1.0.15); the tests importorskip it before importing this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import minatar
import numpy as np
import torch

Z99 = 2.576  # two-sided 99% normal quantile


def reference(game: str, seed: int, sticky_action_prob: float) -> minatar.Environment:
    """The reference game, seeded and reset."""
    env = minatar.Environment(game, sticky_action_prob=sticky_action_prob)
    env.seed(seed)
    env.reset()
    return env


def reference_obs(env: minatar.Environment) -> np.ndarray:
    """The reference's state as the native env observes it: channels first, flattened, float32."""
    return env.state().transpose(2, 0, 1).reshape(-1).astype(np.float32)


def random_policy(rng: np.random.Generator, actions: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda obs: rng.integers(actions, size=obs.shape[0])


def first_episodes(make_env: Callable[..., object], policy, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return and length of the first episode of each of ``n`` native envs (default sticky actions)."""
    env = make_env(n, seed=seed)
    obs = env.reset()
    returns = torch.zeros(n)
    lengths = torch.zeros(n, dtype=torch.int64)
    running = torch.ones(n, dtype=torch.bool)
    while running.any():
        step = env.step(torch.as_tensor(policy(obs.numpy()), dtype=torch.int64))
        returns += step.reward * running
        lengths += running
        running &= ~(step.terminated | step.truncated)
        obs = step.obs
    return returns.numpy(), lengths.numpy()


def reference_episodes(game: str, actions: Sequence[int], max_steps: int, policy, episodes: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return and length of ``episodes`` reference episodes (sticky actions on), cut at the native limit."""
    env = reference(game, seed=seed, sticky_action_prob=0.1)
    returns, lengths = np.zeros(episodes), np.zeros(episodes)
    for i in range(episodes):
        env.reset()
        terminal = False
        while not terminal and lengths[i] < max_steps:
            action = policy(reference_obs(env)[None])[0]
            reward, terminal = env.act(actions[action])
            returns[i] += reward
            lengths[i] += 1
    return returns, lengths


def assert_same_mean(native: np.ndarray, ref: np.ndarray, what: str) -> None:
    """Means within the 99% range of a two-sample difference: the same distribution, as far as these samples tell."""
    diff = native.mean() - ref.mean()
    se = np.sqrt(native.var(ddof=1) / len(native) + ref.var(ddof=1) / len(ref))
    assert abs(diff) <= Z99 * se, f"{what}: native {native.mean():.3f} vs minatar {ref.mean():.3f} (se {se:.3f})"
