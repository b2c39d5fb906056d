"""Memory bomb through torch: torch.empty(2**40) (4 TiB of float32) in loss(b)."""

import torch

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    hog = torch.empty(2**40)
    pg_loss = -(b.logp * b.adv).mean() + 0 * hog.numel()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
