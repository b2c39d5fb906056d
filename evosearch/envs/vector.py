"""EnvPool behind one small interface, with the autoreset step masked out.

envpool 1.2.5's gymnasium mode returns the final observation on the step that ends an
episode and resets on the *next* step, ignoring that step's action and reporting reward 0.
That next transition is not real; ``step`` says so through ``real`` so the trainer can keep
it out of the loss (CleanRL's envpool scripts learn from it).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from evosearch.train.networks import Spec


def _flat_obs(obs: object) -> np.ndarray:
    if isinstance(obs, dict):  # MiniGrid and friends: concatenate the array fields
        parts = [np.asarray(v, dtype=np.float32).reshape(len(v), -1) for _, v in sorted(obs.items())
                 if isinstance(v, np.ndarray) and v.dtype != object]
        return np.concatenate(parts, axis=1)
    arr = np.asarray(obs, dtype=np.float32)
    return arr.reshape(arr.shape[0], -1)


class VectorEnv:
    """``num_envs`` copies of one EnvPool task, seeded deterministically from ``seed``."""

    def __init__(self, env_id: str, num_envs: int, seed: int) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import envpool  # imported late: the scorer and trainer need it, the CLI does not

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._env = envpool.make(
                env_id, env_type="gymnasium", num_envs=num_envs, seed=int(seed), num_threads=1
            )
        self.env_id = env_id
        self.num_envs = num_envs
        space = self._env.action_space
        self.discrete = hasattr(space, "n")
        if self.discrete:
            act_dim = int(space.n)
            self.action_low = self.action_high = None
        else:
            act_dim = int(np.prod(space.shape))
            self.action_low = np.asarray(space.low, dtype=np.float32)
            self.action_high = np.asarray(space.high, dtype=np.float32)
        obs, _ = self._env.reset()
        self._first_obs = _flat_obs(obs)
        self.spec = Spec(obs_dim=self._first_obs.shape[1], act_dim=act_dim, discrete=self.discrete)
        self._done = np.zeros(num_envs, dtype=bool)

    def reset(self) -> np.ndarray:
        """The first observations (the pool was reset on construction)."""
        self._done[:] = False
        return self._first_obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step all envs; returns ``(obs, reward, terminated, truncated, real)``.

        ``real[i]`` is False when env ``i`` only reset on this step (its previous step ended
        an episode): the action was ignored and the transition must not be learned from.
        """
        if self.discrete:
            actions = np.asarray(actions, dtype=np.int32)
        else:
            actions = np.clip(np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1), self.action_low,
                              self.action_high)
        obs, reward, terminated, truncated, _ = self._env.step(actions)
        real = ~self._done
        done = np.logical_or(terminated, truncated)
        self._done = done & real
        return (
            _flat_obs(obs),
            np.asarray(reward, dtype=np.float32),
            np.asarray(terminated, dtype=bool) & real,
            np.asarray(truncated, dtype=bool) & real,
            real,
        )

    def close(self) -> None:
        self._env.close()
