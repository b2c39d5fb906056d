"""A segmentation fault: ctypes.string_at(0) reads address zero, in loss(b)."""

import ctypes

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    ctypes.string_at(0)
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
