"""Acrobot-v1 as a batched torch environment.

Reproduces gymnasium 1.4.0's ``AcrobotEnv`` (``classic_control/acrobot.py``) as ``gymnasium.make``
builds it: the "book" dynamics, one 4th-order Runge-Kutta step of ``dt = 0.2`` s per action, no torque
noise (``torque_noise_max = 0``), joint angles wrapped into [-pi, pi], joint velocities clipped to
``MAX_VEL_1`` / ``MAX_VEL_2``, reward -1 per step and 0 on the step that reaches the goal height, and
a 500-step time limit.

Each gymnasium expression is quoted in a comment above its batched form. The batched forms fold the
constant parts (masses, lengths, inertias) into single numbers, use ``sin(x)`` for gymnasium's
``cos(x - pi/2)`` and fuse multiply-adds: that halves the op count of the four derivative evaluations
per step (each op costs a few microseconds of dispatch at small batch sizes).

Precision: gymnasium samples the start state in float64 and stores it as float32, then integrates in
float64 (``np.append`` of the float torque promotes the state); ``initial_state`` rounds to float32 for
the same reason. The reassociated arithmetic changes float64 results by a few ulps per step: a step
agrees with gymnasium to ~1e-15 in float64 and ~1e-6 in float32. The system is chaotic, so
free-running trajectories in different precisions separate eventually (float64 ones stayed within
1e-13 of gymnasium over 400 random-action steps in our checks).

``wrap`` is gymnasium's while-loop written as one floor: ``x - 2pi * floor((x + pi) / 2pi)``. It agrees
with the loop except within a rounding error of ``x == pi``, which the loop keeps and this maps to
``-pi`` (the same angle; the observation's sine differs by ~1e-16).
"""

from __future__ import annotations

import math

import torch

from evosearch.envs.native.base import NativeEnv

DT = 0.2  # integration timestep [s]
LINK_LENGTH_1 = 1.0  # [m]
LINK_MASS_1 = 1.0  # [kg] mass of link 1
LINK_MASS_2 = 1.0  # [kg] mass of link 2
LINK_COM_POS_1 = 0.5  # [m] position of the center of mass of link 1
LINK_COM_POS_2 = 0.5  # [m] position of the center of mass of link 2
LINK_MOI = 1.0  # moments of inertia for both links
MAX_VEL_1 = 4 * math.pi
MAX_VEL_2 = 9 * math.pi
AVAIL_TORQUE = [-1.0, 0.0, +1]
G = 9.8
RESET_LOW, RESET_HIGH = -0.1, 0.1  # every state variable starts uniform in this range

# The names gymnasium's ``_dsdt`` gives them, and the constant products it forms from them.
m1, m2, l1 = LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1
lc1, lc2, I1, I2 = LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI
D1_CONST = m1 * lc1**2 + m2 * (l1**2 + lc2**2) + I1 + I2  # d1 = D1_CONST + D1_COS * cos(theta2)
D1_COS = m2 * 2 * l1 * lc2
D2_CONST = m2 * lc2**2 + I2  # d2 = D2_CONST + D2_COS * cos(theta2)
D2_COS = m2 * l1 * lc2
PHI1_COEF = (m1 * lc1 + m2 * l1) * G
PHI2_COEF = m2 * lc2 * G
CORIOLIS = m2 * l1 * lc2  # multiplies the dtheta**2 * sin(theta2) terms
DDTHETA2_DENOM = m2 * lc2**2 + I2  # ddtheta2's denominator is DDTHETA2_DENOM - d2**2 / d1


class Acrobot(NativeEnv):
    """Swing the free end of a two-link chain above the bar by torquing the middle joint (-1, 0, +1)."""

    env_id = "Acrobot-v1"
    obs_dim = 6
    act_dim = 3
    discrete = True
    max_episode_steps = 500
    state_dim = 4  # theta1, theta2, dtheta1, dtheta2

    def setup(self) -> None:
        self.k = self._constants(
            d1_const=D1_CONST, d2_const=D2_CONST, ddtheta2_denom=DDTHETA2_DENOM, pi=math.pi, two_pi=2 * math.pi
        )
        self._torque = torch.tensor(AVAIL_TORQUE, dtype=self.dtype, device=self.device)
        self._max_vel = torch.tensor([MAX_VEL_1, MAX_VEL_2], dtype=self.dtype, device=self.device)
        self._min_vel = -self._max_vel
        self._goal = torch.tensor(-1.0, dtype=self.dtype, device=self.device)
        self._minus_one = torch.tensor(-1.0, device=self.device)  # float32, like the reward
        self._reset_low = torch.full((4,), RESET_LOW, dtype=self.dtype, device=self.device)
        self._reset_span = torch.full((4,), RESET_HIGH - RESET_LOW, dtype=self.dtype, device=self.device)

    def initial_state(self, n: int) -> torch.Tensor:
        state = self._uniform(n, self._reset_low, self._reset_span)
        if self.dtype != torch.float32:  # gymnasium's reset stores float32 (see the module docstring)
            state = state.to(torch.float32).to(self.dtype)
        return state

    def _dsdt(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Time derivative of ``s = [theta1, theta2, dtheta1, dtheta2]`` under torque ``a`` (the "book" model)."""
        k = self.k
        theta1, theta2, dtheta1, dtheta2 = s.unbind(1)
        cos2 = torch.cos(theta2)
        sin2 = torch.sin(theta2)
        # d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos(theta2)) + I1 + I2
        d1 = torch.add(k.d1_const, cos2, alpha=D1_COS)
        # d2 = m2 * (lc2**2 + l1 * lc2 * cos(theta2)) + I2
        d2 = torch.add(k.d2_const, cos2, alpha=D2_COS)
        # phi2 = m2 * lc2 * g * cos(theta1 + theta2 - pi / 2.0), and cos(x - pi/2) = sin(x)
        phi2 = PHI2_COEF * torch.sin(theta1 + theta2)
        # phi1 = -m2 * l1 * lc2 * dtheta2**2 * sin(theta2) - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2)
        #        + (m1 * lc1 + m2 * l1) * g * cos(theta1 - pi / 2) + phi2
        coriolis1 = torch.add(dtheta2, dtheta1, alpha=2.0) * dtheta2 * sin2
        phi1 = torch.add(torch.add(phi2, torch.sin(theta1), alpha=PHI1_COEF), coriolis1, alpha=-CORIOLIS)
        # ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * sin(theta2) - phi2)
        #            / (m2 * lc2**2 + I2 - d2**2 / d1)
        d2_over_d1 = d2 / d1
        numerator = torch.addcmul(torch.addcmul(a, d2_over_d1, phi1), dtheta1 * dtheta1, sin2, value=-CORIOLIS) - phi2
        ddtheta2 = numerator / torch.addcmul(k.ddtheta2_denom, d2_over_d1, d2, value=-1.0)
        # ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        ddtheta1 = torch.addcmul(phi1, d2, ddtheta2).div_(d1).neg_()
        return torch.stack((dtheta1, dtheta2, ddtheta1, ddtheta2), dim=1)

    def dynamics(self, state: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        torque = self._torque.index_select(0, actions)

        # gymnasium's rk4 over t = [0, dt]: a single Runge-Kutta step, the torque held constant.
        k1 = self._dsdt(state, torque)
        k2 = self._dsdt(torch.add(state, k1, alpha=DT / 2.0), torque)
        k3 = self._dsdt(torch.add(state, k2, alpha=DT / 2.0), torque)
        k4 = self._dsdt(torch.add(state, k3, alpha=DT), torque)
        # y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        ns = torch.add(state, torch.add(k1, k2, alpha=2.0).add_(k3, alpha=2.0).add_(k4), alpha=DT / 6.0)

        angles, velocities = ns[:, :2], ns[:, 2:]  # views: the in-place edits below land in ns
        angles.sub_(torch.floor((angles + self.k.pi) / self.k.two_pi), alpha=2 * math.pi)  # wrap(x, -pi, pi)
        velocities.clamp_(self._min_vel, self._max_vel)  # bound(x, -MAX_VEL, MAX_VEL)

        # terminal: -cos(s[0]) - cos(s[1] + s[0]) > 1.0
        theta1, theta2 = ns[:, 0], ns[:, 1]
        terminated = torch.cos(theta1) + torch.cos(theta2 + theta1) < self._goal
        reward = terminated.to(torch.float32) + self._minus_one  # -1 per step, 0 on reaching the goal
        return ns, reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        angles = state[:, :2]
        cos_sin = torch.stack((torch.cos(angles), torch.sin(angles)), dim=2).flatten(1)  # c1, s1, c2, s2
        return torch.cat((cos_sin, state[:, 2:]), dim=1).to(torch.float32)
