"""Memory bomb: one 64 GiB bytearray in loss(b)."""

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    hog = bytearray(64 * 2**30)
    pg_loss = -(b.logp * b.adv).mean() + 0 * len(hog)
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
