"""What every MinAtar game shares: a dict of batched game tensors, sticky actions, a 10x10 image.

MinAtar (Young & Tian 2019, the ``minatar`` package) shrinks five Atari games to a 10x10 grid of
boolean channels. The discovered-RL literature (Lu et al. 2022, "Discovered Policy Optimisation";
Goldie et al.) evaluates update rules on it through gymnax, a JAX port; this is a torch port, so a
whole rollout stays on the trainer's device with a fixed sequence of tensor ops per step.

Conventions, each the ``minatar`` package's unless noted:

* **Actions** are the game's minimal action set (``minatar.gym``'s ``-v1`` ids, and gymnax's): the
  agent picks an index into ``action_set``, which maps to MinAtar's six actions ``n l u r d f``.
* **Sticky actions**: with probability 0.1 the game repeats the previous *executed* action instead
  of the chosen one. As in ``minatar.Environment``, the previous action is not cleared at a reset.
* **Difficulty ramping** is on (the package's default).
* **Observations** are the game's boolean channels as float32 0/1, flattened channels-first
  (``[C, 10, 10]`` -> ``C * 100`` values), so every interface that takes flat observations (the
  rule's batches, policies, the trusted scorer) takes these; the harness's CNN torso reshapes
  them back. ``minatar``'s ``state()`` is ``[10, 10, C]``: transpose it to compare.
* **Time limit** (ours, not the package's, which has none): 1,000 steps, gymnax's
  ``max_steps_in_episode`` for these games, as a truncation; Freeway ends by its own 2,500-step
  timer, a termination, before any limit.

Randomness is drawn at a fixed rate: every random quantity a step *could* need is drawn for every
env on every step, and used only where it is needed, so trajectories depend only on the seed and
the actions (see :mod:`evosearch.envs.native.base`).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from evosearch.envs.native.base import NativeEnv, NativeStep

GameState = dict[str, torch.Tensor]

#: MinAtar's six actions, by the letters its games use.
ACTION_LETTERS = ("n", "l", "u", "r", "d", "f")
GRID = 10
STICKY_ACTION_PROB = 0.1
TIME_LIMIT = 1000


def _where(done: torch.Tensor, fresh: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """``fresh`` where ``done`` (per env), else ``current``; ``done`` broadcast over trailing dims."""
    return torch.where(done.view(-1, *([1] * (current.dim() - 1))), fresh, current)


class MinAtarEnv(NativeEnv):
    """Base class: a game supplies ``initial_state``, ``dynamics`` and ``observe`` over a dict of tensors.

    Every value in the state dict has the batch as its leading dim. ``dynamics`` receives MinAtar
    action indices (0-5, after sticky actions and the minimal-set mapping) as int64 ``[n]``.
    """

    discrete = True
    channels: ClassVar[int]
    #: The minimal action set, as MinAtar action indices (0-5); the agent picks a position in it.
    action_set: ClassVar[tuple[int, ...]]
    max_episode_steps = TIME_LIMIT
    state_dim = 0  # the state is a dict, not a flat vector
    sticky_action_prob: ClassVar[float] = STICKY_ACTION_PROB

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "channels" in cls.__dict__:
            cls.obs_dim = cls.channels * GRID * GRID
            cls.obs_shape = (cls.channels, GRID, GRID)
        if "action_set" in cls.__dict__:
            cls.act_dim = len(cls.action_set)

    def __init__(self, num_envs: int, seed: int, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(num_envs, seed, device=device, dtype=dtype)
        self._action_set = torch.tensor(self.action_set, dtype=torch.int64, device=self.device)
        self.last_action = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._sticky_prob = torch.tensor(self.sticky_action_prob, device=self.device)

    # ----------------------------------------------------------------- helpers for games

    def _rand(self, *shape: int) -> torch.Tensor:
        """``U[0, 1)`` float32 of ``shape`` from the env's generator (a fixed-rate draw)."""
        return torch.rand(*shape, generator=self.generator, device=self.device)

    def _randint(self, low: int, high: int, *shape: int) -> torch.Tensor:
        """Integers in ``[low, high)`` as int64, like numpy's ``randint(low, high)``."""
        return torch.randint(low, high, shape, generator=self.generator, device=self.device)

    def _zeros(self, *shape: int, dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return torch.zeros(*shape, dtype=dtype, device=self.device)

    def _image(self, n: int) -> torch.Tensor:
        """An empty ``[n, channels, 10, 10]`` bool image for ``observe`` to paint into."""
        return torch.zeros(n, self.channels, GRID, GRID, dtype=torch.bool, device=self.device)

    @staticmethod
    def _flat(image: torch.Tensor) -> torch.Tensor:
        """The ``[n, C, 10, 10]`` bool image as the flat float32 observation."""
        return image.reshape(image.shape[0], -1).to(torch.float32)

    # ----------------------------------------------------------------- the game (subclasses)

    def initial_state(self, n: int) -> GameState:  # type: ignore[override]
        raise NotImplementedError

    def dynamics(self, state: GameState, actions: torch.Tensor  # type: ignore[override]
                 ) -> tuple[GameState, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def observe(self, state: GameState) -> torch.Tensor:  # type: ignore[override]
        raise NotImplementedError

    # ----------------------------------------------------------------- episodes

    def step(self, actions: torch.Tensor) -> NativeStep:
        """Advance every env one step (sticky actions, then the game), resetting those that ended."""
        chosen = self._action_set.index_select(0, actions.long().reshape(-1))
        sticky = self._rand(self.num_envs) < self._sticky_prob
        executed = torch.where(sticky, self.last_action, chosen)
        self.last_action = executed
        next_state, reward, terminated = self.dynamics(self.state, executed)
        self.elapsed += 1
        truncated = self.elapsed >= self.max_episode_steps
        done = terminated | truncated
        final_obs = self.observe(next_state)
        fresh = self.initial_state(self.num_envs)
        self.state = {key: _where(done, fresh[key], value) for key, value in next_state.items()}
        self.elapsed.masked_fill_(done, 0)
        return NativeStep(obs=self.observe(self.state), reward=reward.to(torch.float32), terminated=terminated,
                          truncated=truncated, final_obs=final_obs)

    def set_state(self, state: GameState, elapsed: int | torch.Tensor | None = None) -> None:  # type: ignore[override]
        """Overwrite the game state: each value is one env's (copied to all) or the whole batch's.

        Tests use it to put the batch in the exact state of a ``minatar`` env before comparing a step.
        """
        current = self.state
        for key, value in state.items():
            if key not in current:
                raise KeyError(f"{type(self).__name__} has no state field {key!r}; fields: {', '.join(current)}")
            target = current[key]
            tensor = torch.as_tensor(value).to(device=self.device, dtype=target.dtype)
            current[key] = tensor.expand_as(target).clone()
        if elapsed is not None:
            steps = torch.as_tensor(elapsed).to(device=self.device, dtype=torch.int64)
            self.elapsed = steps.expand(self.num_envs).clone()
