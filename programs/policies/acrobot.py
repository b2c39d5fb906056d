"""Acrobot-v1: energy pumping with the actuated elbow.

Only the second (elbow) joint is driven, so the motor's power, and the rate at which the
acrobot's total energy changes, is torque * (elbow angular velocity). Applying the torque along
the elbow's velocity therefore adds energy at every step until the tip swings high enough: the
energy-pumping idea behind Spong's swing-up controllers (M. W. Spong, "The swing up control
problem for the Acrobot", IEEE Control Systems 1995), here reduced to a bang-bang rule. A small
term against the shoulder's velocity times the kicks with the swing of the whole arm (the elbow
tends to fold against the swing), which makes the swing-up a little faster and more regular.

Observation: [cos t1, sin t1, cos t2, sin t2, t1_dot, t2_dot] (t1 = 0 hangs down, t2 relative to
link 1). Actions: 0 = torque -1, 1 = torque 0, 2 = torque +1. Goal: raise the tip more than one
link length above the pivot, -cos t1 - cos(t1 + t2) > 1.
"""

import numpy as np

ENV_ID = "Acrobot-v1"  # the environment this policy plays (read by the evaluator, not evolved)

# EVOLVE-BLOCK-START
K_ELBOW_VEL = 1.0  # weight of the elbow's velocity (the energy-pumping term)
K_SHOULDER_VEL = -0.25  # weight of the shoulder's velocity (negative: kick against its swing)


def act(obs):
    t1_dot, t2_dot = obs[:, 4], obs[:, 5]
    drive = K_ELBOW_VEL * t2_dot + K_SHOULDER_VEL * t1_dot
    # Torque +1 (action 2) when the drive is positive, -1 (action 0) otherwise.
    return np.where(drive > 0, 2, 0).astype(np.int64)
# EVOLVE-BLOCK-END
