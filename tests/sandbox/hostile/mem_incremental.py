"""Memory bomb that grows: appends 64 MiB chunks (touched, so resident) forever in loss(b)."""

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    hog = []
    while True:
        hog.append(bytearray(64 * 2**20))
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
