"""MountainCar-v0: energy pumping, push in the direction of the velocity.

The engine is too weak to climb the right hill directly, so the car must rock back and forth.
Pushing along the velocity makes the engine's power force * velocity positive at every step,
so the car's mechanical energy (kinetic plus height) grows with every swing until it reaches
the flag: the well-known energy-pumping heuristic for the mountain-car task (A. Moore 1990;
Sutton & Barto 2018, Example 10.1). At rest (the start) there is no velocity to follow:
the car then rolls down the slope it stands on, i.e. pushes left when right of about the
valley floor (-pi/6, about -0.52) and right when left of it, which starts the first swing
with gravity's help.

Observation: [position, velocity]. Actions: 0 = push left, 1 = no push, 2 = push right.
"""

import numpy as np

ENV_ID = "MountainCar-v0"  # the environment this policy plays (read by the evaluator, not evolved)

# EVOLVE-BLOCK-START
VEL_DEADBAND = 0.0  # at or below this |velocity| the car counts as at rest
REST_POS = -0.5  # about the valley floor: at rest, push left when right of it, right when left


def act(obs):
    position, velocity = obs[:, 0], obs[:, 1]
    push_right = velocity > 0
    # At rest: push downhill, towards the valley floor.
    at_rest = np.abs(velocity) <= VEL_DEADBAND
    push_right = np.where(at_rest, position < REST_POS, push_right)
    return np.where(push_right, 2, 0).astype(np.int64)
# EVOLVE-BLOCK-END
