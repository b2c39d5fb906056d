"""The shape every torch-native environment shares: a batch of physical states stepped by pure tensor ops.

Why this exists: EnvPool steps on the host, so a trainer on a GPU pays a device-to-host copy for every
action and a host-to-device copy for every observation. These environments keep the whole batch on the
trainer's device and step it with a fixed sequence of tensor ops: no ``.item()``, no ``.nonzero()``, no
Python branch that depends on a tensor's value, so a step never waits for the device.

Episode bookkeeping follows ``gymnasium.make(env_id)``, i.e. the env wrapped in ``TimeLimit``:

* ``terminated`` is whatever the dynamics say (the pole fell, the car reached the flag).
* ``truncated`` is ``elapsed >= max_episode_steps`` *regardless of* ``terminated``, exactly as
  ``TimeLimit.step`` sets it, so a step can be both terminated and truncated.
* Autoreset happens in the same step (unlike EnvPool, which resets on the next call): an env that ended
  gets a fresh initial state, ``obs`` is that state's observation and ``final_obs`` is the observation
  the ending step produced (what gymnasium's ``step`` returned).

A fresh initial state is sampled for every env on every step and kept only where an episode ended;
sampling 128 small states is cheaper than any data-dependent selection, and it keeps the op count
fixed. That does consume the generator at a fixed rate, so trajectories depend only on ``seed`` and
the actions, not on which envs happened to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import torch


@dataclass(frozen=True)
class NativeStep:
    """One batched transition; every field is a tensor on the env's device with leading dim ``num_envs``."""

    obs: torch.Tensor  # float32 [n, obs_dim]; the new episode's first obs where an episode ended
    reward: torch.Tensor  # float32 [n]
    terminated: torch.Tensor  # bool [n]
    truncated: torch.Tensor  # bool [n]; elapsed >= max_episode_steps, even when also terminated
    final_obs: torch.Tensor  # float32 [n, obs_dim]; the obs this step produced, before any reset


class NativeEnv:
    """Base class: subclasses supply the physics as pure batched functions, this class does episodes."""

    env_id: ClassVar[str]
    obs_dim: ClassVar[int]
    #: ``(channels, height, width)`` for image observations (flattened channels-first into ``obs_dim``)
    obs_shape: ClassVar[tuple[int, int, int] | None] = None
    act_dim: ClassVar[int]  # number of discrete actions, or the action vector's length
    discrete: ClassVar[bool]
    max_episode_steps: ClassVar[int]
    state_dim: ClassVar[int]

    def __init__(
        self,
        num_envs: int,
        seed: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.dtype = dtype
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.action_low: torch.Tensor | None = None
        self.action_high: torch.Tensor | None = None
        self.setup()
        self.state = self.initial_state(self.num_envs)
        self.elapsed = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    # ----------------------------------------------------------------- helpers for subclasses

    def _constants(self, dtype: torch.dtype | None = None, **values: float) -> SimpleNamespace:
        """Named 0-dim tensors on the device, in ``dtype`` (default: the state's dtype).

        An op with a Python float costs about 2 µs more on CPU than one with a 0-dim tensor (the float
        is wrapped into a tensor on every call), and the dynamics use dozens of such ops per step.
        """
        dtype = dtype or self.dtype
        return SimpleNamespace(
            **{name: torch.tensor(value, dtype=dtype, device=self.device) for name, value in values.items()}
        )

    def _uniform(self, n: int, low: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        """``low + span * U[0, 1)`` per column, the same formula as numpy's ``Generator.uniform``."""
        u = torch.rand(n, low.shape[0], generator=self.generator, device=self.device, dtype=self.dtype)
        return torch.addcmul(low, u, span)

    # ----------------------------------------------------------------- the physics (subclasses)

    def setup(self) -> None:
        """Build the constants the physics needs; runs once ``device``, ``dtype`` and ``generator`` exist."""

    def initial_state(self, n: int) -> torch.Tensor:
        """``n`` fresh states from the same distribution as gymnasium's ``reset``; uses ``self.generator``."""
        raise NotImplementedError

    def dynamics(self, state: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(next_state, reward float32 [n], terminated bool [n])``; must return a new ``next_state`` tensor."""
        raise NotImplementedError

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        """float32 observations; always a new tensor, never a view of ``state`` (callers may edit obs in place)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- episodes

    def reset(self) -> torch.Tensor:
        """Start a new episode in every env; returns float32 obs [num_envs, obs_dim]."""
        self.state = self.initial_state(self.num_envs)
        self.elapsed.zero_()
        return self.observe(self.state)

    def step(self, actions: torch.Tensor) -> NativeStep:
        """Advance every env one step, resetting those whose episode ended in this same step.

        ``actions`` live on the env's device: for discrete envs an integer tensor ``[n]`` (int64 or
        int32), for continuous ones a float tensor ``[n, act_dim]``, clipped to the bounds inside the
        physics where gymnasium clips (Pendulum), so a policy's raw output can go in as is.
        """
        next_state, reward, terminated = self.dynamics(self.state, actions)
        self.elapsed += 1
        truncated = self.elapsed >= self.max_episode_steps
        done = terminated | truncated
        final_obs = self.observe(next_state)
        self.state = torch.where(done.unsqueeze(1), self.initial_state(self.num_envs), next_state)
        self.elapsed.masked_fill_(done, 0)
        return NativeStep(
            obs=self.observe(self.state),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=final_obs,
        )

    def set_state(
        self, state: torch.Tensor | np.ndarray, elapsed: int | torch.Tensor | np.ndarray | None = None
    ) -> None:
        """Overwrite the physical state (and optionally the step counters) of the whole batch.

        ``state`` is ``[state_dim]`` (copied into every env) or ``[num_envs, state_dim]``, in gymnasium's
        layout, so ``env.unwrapped.state`` can be passed as is. ``elapsed=None`` keeps the counters, which
        is what a test re-syncing the state after each step wants.
        """
        values = torch.as_tensor(np.asarray(state, dtype=np.float64) if not torch.is_tensor(state) else state)
        values = values.to(device=self.device, dtype=self.dtype)
        self.state = values.expand(self.num_envs, self.state_dim).clone()
        if elapsed is not None:
            steps = torch.as_tensor(elapsed).to(device=self.device, dtype=torch.int64)
            self.elapsed = steps.expand(self.num_envs).clone()

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.env_id}, num_envs={self.num_envs}, device={self.device}, dtype={self.dtype})"
