"""Unbounded recursion in loss(b), under the default recursion limit."""

ENT_COEF = 0.01
VF_COEF = 0.5


def deeper(n):
    return deeper(n + 1) + 1


def loss(b):
    pg_loss = -(b.logp * b.adv).mean() + 0 * deeper(0)
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
