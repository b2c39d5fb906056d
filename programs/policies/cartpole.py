"""CartPole-v1: a linear (PD-style) state-feedback controller.

The pole is an inverted pendulum on a cart, so the classic answer is linear state feedback
u = K . s, the structure an LQR design gives (e.g. Barto, Sutton & Anderson 1983 pose the task;
any control text derives the LQR gains). With only two actions (push left / push right) we push
in the direction of the sign of K . s: the angle and angular-velocity terms keep the pole up
(a PD law), and the small cart terms bring the cart back towards the centre. The cart gains are
positive, not negative: to move the cart left the pole must first be tipped left, which takes a
push to the right (the non-minimum-phase behaviour of the cart-pole).

Observation: [cart position, cart velocity, pole angle (rad, positive = leaning right),
pole angular velocity]. Actions: 0 = push left, 1 = push right.
"""

import numpy as np

ENV_ID = "CartPole-v1"  # the environment this policy plays (read by the evaluator, not evolved)

# EVOLVE-BLOCK-START
K_ANGLE = 1.0  # pole angle (rad)
K_ANGLE_VEL = 0.5  # pole angular velocity (rad/s)
K_POS = 0.05  # cart position
K_VEL = 0.2  # cart velocity


def act(obs):
    x, x_dot, theta, theta_dot = obs[:, 0], obs[:, 1], obs[:, 2], obs[:, 3]
    force = K_ANGLE * theta + K_ANGLE_VEL * theta_dot + K_POS * x + K_VEL * x_dot
    # Push right (1) when the feedback asks for a positive force, left (0) otherwise.
    return (force > 0).astype(np.int64)
# EVOLVE-BLOCK-END
