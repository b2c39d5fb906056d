"""torch.save into the repository root (a write through torch, not open()): over a file there (the
test's canary), then as a new one."""

import torch

for path in ("__CANARY__", "__TARGET__"):
    torch.save(torch.zeros(3), path)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
