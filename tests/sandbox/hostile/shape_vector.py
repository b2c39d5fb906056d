"""Wrong shape: the per-sample loss vector instead of its mean."""

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv)
    v_loss = 0.5 * ((b.value - b.ret) ** 2)
    return pg_loss - ENT_COEF * b.entropy + VF_COEF * v_loss
