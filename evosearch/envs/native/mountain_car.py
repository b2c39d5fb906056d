"""MountainCar-v0 as a batched torch environment.

Reproduces gymnasium 1.4.0's ``MountainCarEnv`` (``classic_control/mountain_car.py``) with
``goal_velocity=0`` and ``gymnasium.make``'s 200-step time limit: reward -1 on every step (the one
reaching the flag too), velocity clipped to +-0.07, position clipped to [-1.2, 0.6] and the velocity
zeroed when the car sits against the left wall while still moving left.

Precision: gymnasium keeps position and velocity as float64 and casts the observation to float32;
with ``dtype=torch.float64`` the arithmetic below matches it to the last few bits (the left-wall test
``position == min_position`` is exact in either dtype, since clipping returns the bound itself). The
float32 default drifts by ~1e-8 per step.
"""

from __future__ import annotations

import torch

from evosearch.envs.native.base import NativeEnv

MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GOAL_POSITION = 0.5
GOAL_VELOCITY = 0  # the flag counts only when reached moving right (or standing still)
FORCE = 0.001
GRAVITY = 0.0025
RESET_LOW, RESET_HIGH = -0.6, -0.4  # the start position; the start velocity is 0


class MountainCar(NativeEnv):
    """Rock an underpowered car (0: push left, 1: no push, 2: push right) up to the flag at x = 0.5."""

    env_id = "MountainCar-v0"
    obs_dim = 2
    act_dim = 3
    discrete = True
    max_episode_steps = 200
    state_dim = 2  # position, velocity

    def setup(self) -> None:
        self.k = self._constants(min_position=MIN_POSITION, goal_position=GOAL_POSITION, zero=0.0, three=3.0)
        # gymnasium's ``(action - 1) * force`` for the three actions
        self._push = torch.tensor([-FORCE, 0.0, FORCE], dtype=self.dtype, device=self.device)
        self._reset_low = torch.tensor([RESET_LOW, 0.0], dtype=self.dtype, device=self.device)
        self._reset_span = torch.tensor([RESET_HIGH - RESET_LOW, 0.0], dtype=self.dtype, device=self.device)

    def initial_state(self, n: int) -> torch.Tensor:
        return self._uniform(n, self._reset_low, self._reset_span)

    def dynamics(self, state: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = self.k
        position, velocity = state.unbind(1)
        # velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)
        push = self._push.index_select(0, actions)
        velocity = velocity + torch.add(push, torch.cos(k.three * position), alpha=-GRAVITY)
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED)
        position = (position + velocity).clamp(MIN_POSITION, MAX_POSITION)
        # if position == min_position and velocity < 0: velocity = 0
        velocity = torch.where(position == k.min_position, velocity.clamp_min(0.0), velocity)

        terminated = (position >= k.goal_position) & (velocity >= k.zero)  # goal_velocity = 0
        reward = torch.full((state.shape[0],), -1.0, dtype=torch.float32, device=self.device)
        return torch.stack((position, velocity), dim=1), reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        return state.to(torch.float32, copy=True)
