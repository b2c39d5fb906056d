"""CartPole-v1: a weak seed for policy search, the pole angle's sign alone.

The linear controller of ``programs/policies/cartpole.py`` with every gain but the angle's set
to zero: it pushes towards the side the pole leans to, which keeps the pole up for a few dozen
steps and then loses it to the growing angular velocity. A search that seeds from this has to
find the damping term (and the cart terms) itself.

Observation: [cart position, cart velocity, pole angle, pole angular velocity]. Actions: 0 = push
left, 1 = push right.
"""

import numpy as np

ENV_ID = "CartPole-v1"  # the environment this policy plays (read by the evaluator, not evolved)

# EVOLVE-BLOCK-START
K_ANGLE = 1.0  # pole angle (rad)
K_ANGLE_VEL = 0.0  # pole angular velocity (rad/s)
K_POS = 0.0  # cart position
K_VEL = 0.0  # cart velocity


def act(obs):
    x, x_dot, theta, theta_dot = obs[:, 0], obs[:, 1], obs[:, 2], obs[:, 3]
    force = K_ANGLE * theta + K_ANGLE_VEL * theta_dot + K_POS * x + K_VEL * x_dot
    return (force > 0).astype(np.int64)
# EVOLVE-BLOCK-END
