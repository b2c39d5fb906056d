"""CartPole-v1 as a batched torch environment.

Reproduces gymnasium 1.4.0's ``CartPoleEnv`` (``classic_control/cartpole.py``) with the defaults
``gymnasium.make("CartPole-v1")`` uses: euler kinematics, ``sutton_barto_reward=False`` (reward +1 on
*every* step, the terminating one included) and a 500-step time limit.

Each gymnasium expression is quoted in a comment above its batched form. The batched forms divide
the constants out ahead of time and use fused ``addcmul``, which cuts the op count per step by
about half (every op costs a few microseconds of dispatch at small batch sizes) at the price of
reassociating the arithmetic.

Precision: gymnasium keeps the state in float64 (its ``reset`` samples float64, ``step`` stores
``np.array(..., dtype=np.float64)``) and casts only the observation to float32. With
``dtype=torch.float64`` a step agrees with gymnasium to ~1e-16 relative (the reassociation); the
float32 default drifts by ~1e-7 per step, which can flip a termination only when the cart or pole
lands within that distance of a threshold.
"""

from __future__ import annotations

import math

import torch

from evosearch.envs.native.base import NativeEnv

GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # actually half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds between state updates
THETA_THRESHOLD_RADIANS = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
RESET_LOW, RESET_HIGH = -0.05, 0.05  # every state variable starts uniform in this range


class CartPole(NativeEnv):
    """Push a cart left (action 0) or right (action 1) to keep the pole on it upright."""

    env_id = "CartPole-v1"
    obs_dim = 4
    act_dim = 2
    discrete = True
    max_episode_steps = 500
    state_dim = 4  # x, x_dot, theta, theta_dot

    def setup(self) -> None:
        self.k = self._constants(gravity=GRAVITY, length_four_thirds=LENGTH * 4.0 / 3.0)
        # gymnasium's ``force`` for actions 0 and 1, already divided by the total mass
        force = [-FORCE_MAG / TOTAL_MASS, FORCE_MAG / TOTAL_MASS]
        self._force_over_mass = torch.tensor(force, dtype=self.dtype, device=self.device)
        # |x| > X_THRESHOLD or |theta| > THETA_THRESHOLD_RADIANS ends the episode; the velocities never do.
        limits = [X_THRESHOLD, math.inf, THETA_THRESHOLD_RADIANS, math.inf]
        self._limits = torch.tensor(limits, dtype=self.dtype, device=self.device)
        self._reset_low = torch.full((4,), RESET_LOW, dtype=self.dtype, device=self.device)
        self._reset_span = torch.full((4,), RESET_HIGH - RESET_LOW, dtype=self.dtype, device=self.device)

    def initial_state(self, n: int) -> torch.Tensor:
        return self._uniform(n, self._reset_low, self._reset_span)

    def dynamics(self, state: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = self.k
        x, x_dot, theta, theta_dot = state.unbind(1)
        costheta = torch.cos(theta)
        sintheta = torch.sin(theta)

        # For the interested reader: https://coneural.org/florian/papers/05_cart_pole.pdf
        # temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
        temp = torch.addcmul(
            self._force_over_mass.index_select(0, actions),
            theta_dot * theta_dot,
            sintheta,
            value=POLEMASS_LENGTH / TOTAL_MASS,
        )
        # thetaacc = (gravity * sintheta - costheta * temp)
        #            / (length * (4.0 / 3.0 - masspole * costheta**2 / total_mass))
        thetaacc = torch.addcmul(k.gravity * sintheta, costheta, temp, value=-1.0) / torch.addcmul(
            k.length_four_thirds, costheta, costheta, value=-LENGTH * MASSPOLE / TOTAL_MASS
        )
        # xacc = temp - polemass_length * thetaacc * costheta / total_mass
        xacc = torch.addcmul(temp, thetaacc, costheta, value=-POLEMASS_LENGTH / TOTAL_MASS)

        # Euler: every variable moves by tau times its derivative at the *old* state.
        next_state = torch.add(state, torch.stack((x_dot, xacc, theta_dot, thetaacc), dim=1), alpha=TAU)

        terminated = (next_state.abs() > self._limits).any(dim=1)
        reward = torch.ones(state.shape[0], dtype=torch.float32, device=self.device)
        return next_state, reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        return state.to(torch.float32, copy=True)
