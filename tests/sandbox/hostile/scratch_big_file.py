"""Writes a 1 GiB file in its own scratch directory (its working directory): a disk-filling write."""

CHUNK = b"\0" * (16 * 2**20)
with open("evosearch-big.bin", "wb") as f:
    for _ in range(64):
        f.write(CHUNK)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
