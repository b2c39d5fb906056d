"""Pendulum-v1: energy-shaping swing-up plus a linear balance law near the top.

The classic two-mode design (Astrom & Furuta, "Swinging up a pendulum by energy control",
Automatica 2000, with a linear stabiliser switched in near the upright position). Far from the
top the torque pumps energy: the pendulum's energy changes at the rate torque * angular
velocity, so pushing along the velocity while the energy is short of the upright value (and
against it when above) drives the energy to that of the pendulum at rest at the top, and the
swing carries it up. Near the top a PD law (the shape an LQR design gives) holds it there.

Gymnasium's pendulum is a uniform rod (mass 1, length 1, g = 10) with theta = 0 upright, so
with inertia m l^2 / 3 and the centre of mass at l / 2 its energy is
E = thdot^2 / 6 + 5 cos(theta); at rest upright E = 5, hanging down E = -5.

Observation: [cos theta, sin theta, theta_dot]. Action: [torque] in [-2, 2].
"""

import numpy as np

ENV_ID = "Pendulum-v1"  # the environment this policy plays (read by the evaluator, not evolved)

# EVOLVE-BLOCK-START
MAX_TORQUE = 2.0
K_ENERGY = 1.0  # swing-up gain on (energy shortfall) * angular velocity
BALANCE_COS = 0.85  # switch to the balance law when cos(theta) exceeds this (about 32 degrees)
K_ANGLE = 10.0  # balance law: PD gains on the angle and angular velocity
K_ANGLE_VEL = 2.0


def act(obs):
    cos_th, sin_th, th_dot = obs[:, 0], obs[:, 1], obs[:, 2]
    theta = np.arctan2(sin_th, cos_th)  # angle from upright, in (-pi, pi]

    # Swing-up: energy shortfall times velocity, so each swing adds energy until E reaches the top's.
    energy = th_dot**2 / 6.0 + 5.0 * cos_th
    swing = K_ENERGY * (5.0 - energy) * th_dot
    # Balance: linear feedback on the (small) angle and the angular velocity.
    balance = -K_ANGLE * theta - K_ANGLE_VEL * th_dot

    torque = np.where(cos_th > BALANCE_COS, balance, swing)
    return np.clip(torque, -MAX_TORQUE, MAX_TORQUE)[:, None].astype(np.float32)
# EVOLVE-BLOCK-END
