"""Advantage actor-critic (A2C).

Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning" (arXiv:1602.01783),
in its synchronous form as in Stable-Baselines3: policy gradient on the (GAE) advantage with
no ratio or clipping, an entropy bonus of 0.01 and a value loss weighted 0.5.
"""

# EVOLVE-BLOCK-START
ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
# EVOLVE-BLOCK-END
