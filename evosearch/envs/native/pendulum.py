"""Pendulum-v1 as a batched torch environment.

Reproduces gymnasium 1.4.0's ``PendulumEnv`` (``classic_control/pendulum.py``) with ``g=10.0`` and
``gymnasium.make``'s 200-step time limit. The torque is clipped to [-2, 2] inside ``step``, as gymnasium
does, so a policy may emit any real number; the reward is ``-(angle_normalize(th)**2 + 0.1 * thdot**2 +
0.001 * u**2)`` computed from the state *before* the update, and the episode never terminates.

Each gymnasium expression is quoted in a comment above its batched form, which fuses multiply-adds
to keep the op count down (every op costs a few microseconds of dispatch at small batch sizes).

Precision: gymnasium keeps ``(th, thdot)`` in float64, but the clipped torque ``u`` stays the float32
of the action space, and numpy (NEP 50) evaluates ``0.001 * u**2`` and ``3.0 * u`` in float32 before
adding them to float64 terms. The torque terms below are computed in float32 for the same reason, so
with ``dtype=torch.float64`` and float32 actions a step agrees with gymnasium to ~1e-16 relative.
``angle_normalize`` uses ``torch.remainder``, which has numpy's ``%`` sign convention. ``th`` is never
wrapped (gymnasium does not wrap it either), so a pendulum that keeps spinning loses float32 precision
in ``th``; use float64 where that matters.
"""

from __future__ import annotations

import math

import torch

from evosearch.envs.native.base import NativeEnv

MAX_SPEED = 8
MAX_TORQUE = 2.0
DT = 0.05
G = 10.0
M = 1.0
L = 1.0
DEFAULT_X = math.pi  # reset: th uniform in [-DEFAULT_X, DEFAULT_X]
DEFAULT_Y = 1.0  # reset: thdot uniform in [-DEFAULT_Y, DEFAULT_Y]


class Pendulum(NativeEnv):
    """Swing a torque-limited pendulum up and hold it there; one continuous action, the torque."""

    env_id = "Pendulum-v1"
    obs_dim = 3
    act_dim = 1
    discrete = False
    max_episode_steps = 200
    state_dim = 2  # th, thdot

    def setup(self) -> None:
        self.k = self._constants(pi=math.pi, two_pi=2 * math.pi)
        # float32 like the action (see the module docstring)
        self.k32 = self._constants(torch.float32, torque_term=3.0 / (M * L**2), minus_torque_cost=-0.001)
        self.action_low = torch.tensor([-MAX_TORQUE], dtype=torch.float32, device=self.device)
        self.action_high = torch.tensor([MAX_TORQUE], dtype=torch.float32, device=self.device)
        self._reset_low = torch.tensor([-DEFAULT_X, -DEFAULT_Y], dtype=self.dtype, device=self.device)
        self._reset_span = torch.tensor([2 * DEFAULT_X, 2 * DEFAULT_Y], dtype=self.dtype, device=self.device)

    def initial_state(self, n: int) -> torch.Tensor:
        return self._uniform(n, self._reset_low, self._reset_span)

    def dynamics(self, state: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k, k32 = self.k, self.k32
        th, thdot = state.unbind(1)
        # u = np.clip(u, -max_torque, max_torque)[0]
        u = actions.to(torch.float32).reshape(state.shape[0]).clamp(-MAX_TORQUE, MAX_TORQUE)

        # costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2); built negated, as the reward
        angle = torch.remainder(th + k.pi, k.two_pi) - k.pi  # angle_normalize(th)
        minus_costs = (k32.minus_torque_cost * (u * u)).to(self.dtype)
        minus_costs = torch.addcmul(minus_costs, angle, angle, value=-1.0)
        minus_costs = torch.addcmul(minus_costs, thdot, thdot, value=-0.1)

        # newthdot = thdot + (3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l**2) * u) * dt
        accel = torch.add((k32.torque_term * u).to(self.dtype), torch.sin(th), alpha=3 * G / (2 * L))
        newthdot = torch.add(thdot, accel, alpha=DT).clamp(-MAX_SPEED, MAX_SPEED)
        newth = torch.add(th, newthdot, alpha=DT)

        reward = minus_costs.to(torch.float32)
        terminated = torch.zeros(state.shape[0], dtype=torch.bool, device=self.device)
        return torch.stack((newth, newthdot), dim=1), reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        th, thdot = state.unbind(1)
        return torch.stack((torch.cos(th), torch.sin(th), thdot), dim=1).to(torch.float32)
