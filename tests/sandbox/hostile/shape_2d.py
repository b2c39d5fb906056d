"""Wrong shape: a 2-d tensor (the outer product of the per-sample losses)."""

import torch

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    per_sample = -(b.logp * b.adv) - ENT_COEF * b.entropy + VF_COEF * 0.5 * ((b.value - b.ret) ** 2)
    return torch.outer(per_sample, per_sample)
