"""Memory bomb through /dev/shm: 2 GiB of files there (tmpfs is RAM, outside the address-space limit).

Files of 32 MiB each, so that the per-file size limit alone cannot stop it: only a private,
size-capped /dev/shm (or a memory cgroup) does. Their names start with __TARGET__ (a fresh name in
/dev/shm): the test looks for exactly those.
"""

CHUNK = b"\xff" * (32 * 2**20)
for i in range(64):
    with open(f"__TARGET__-{i}", "wb") as f:
        f.write(CHUNK)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
