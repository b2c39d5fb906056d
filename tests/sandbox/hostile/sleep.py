"""time.sleep(1000) in loss(b): no CPU used, so only a wall-clock limit ends it."""

import time

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    time.sleep(1000)
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
