"""LunarLander-v3 (discrete): the hand-written heuristic that ships with gymnasium.

A batched, commented rewrite of ``heuristic()`` in gymnasium's
``gymnasium/envs/box2d/lunar_lander.py`` (originally by Oleg Klimov for OpenAI Gym). Two PD
loops run side by side: one picks a target tilt that steers the lander towards the pad
(x = 0) and brings the angle to it, the other picks a target height that shrinks as the lander
nears the pad and brings the altitude to it. Each step the engine serving the larger demand
fires: the main engine for height, a side engine for the angle. Once a leg touches down only
the fall speed is controlled.

Observation: [x, y, vx, vy, angle, angular velocity, left leg contact, right leg contact].
Actions: 0 = do nothing, 1 = fire left engine, 2 = fire main engine, 3 = fire right engine.
"""

import numpy as np

ENV_ID = "LunarLander-v3"  # the environment this policy plays (read by the evaluator, not evolved)

# EVOLVE-BLOCK-START
ANGLE_FROM_X = 0.5  # tilt towards the pad per unit of horizontal offset
ANGLE_FROM_VX = 1.0  # ... and per unit of horizontal speed
MAX_ANGLE = 0.4  # never aim for more than 0.4 rad (about 22 degrees) of tilt
HOVER_FROM_X = 0.55  # target height per unit of horizontal offset: stay high until over the pad
ANGLE_P = 0.5  # PD gains of the angle loop
ANGLE_D = 1.0
HOVER_P = 0.5  # PD gains of the height loop
HOVER_D = 0.5
TOUCHDOWN_D = 0.5  # after touch-down: damp the fall speed only
DEADBAND = 0.05  # demands smaller than this fire no engine


def act(obs):
    x, y, vx, vy, angle, angle_vel = (obs[:, i] for i in range(6))
    legs_down = (obs[:, 6] > 0.5) | (obs[:, 7] > 0.5)

    # Angle loop: lean towards the pad (and against the drift), capped, then PD on the angle.
    angle_target = np.clip(ANGLE_FROM_X * x + ANGLE_FROM_VX * vx, -MAX_ANGLE, MAX_ANGLE)
    angle_todo = ANGLE_P * (angle_target - angle) - ANGLE_D * angle_vel
    # Height loop: hover higher the further off the pad, PD on the altitude.
    hover_target = HOVER_FROM_X * np.abs(x)
    hover_todo = HOVER_P * (hover_target - y) - HOVER_D * vy

    # After touch-down: keep still and only soften the fall.
    angle_todo = np.where(legs_down, 0.0, angle_todo)
    hover_todo = np.where(legs_down, -TOUCHDOWN_D * vy, hover_todo)

    # Fire the engine with the larger demand. Later np.where calls override earlier ones, so the
    # main engine takes precedence over the side engines, as in the original's if/elif chain.
    action = np.zeros(obs.shape[0], dtype=np.int64)
    action = np.where(angle_todo > DEADBAND, 1, action)
    action = np.where(angle_todo < -DEADBAND, 3, action)
    action = np.where((hover_todo > np.abs(angle_todo)) & (hover_todo > DEADBAND), 2, action)
    return action
# EVOLVE-BLOCK-END
