"""os.system at import (the shell would touch a file in the repository root, the test's canary, and
create another); the loss is honest."""

import os

os.system("touch __CANARY__ __TARGET__")

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
