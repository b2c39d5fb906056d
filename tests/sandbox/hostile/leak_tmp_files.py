"""Leaves files in every temporary directory: /tmp, /var/tmp and $TMPDIR, 32 MiB each, and a FIFO.

On a tmpfs they are memory charged to the slot, and the next job on the worker could read
them. Where a directory is not writable, it goes on; it trains honestly.
"""

import os

NAME = "evosearch-leak-tmp"
SIZE_MB = 32

for directory in {"/tmp", "/var/tmp", os.environ.get("TMPDIR", "/tmp")}:
    try:
        with open(os.path.join(directory, NAME), "wb") as f:
            f.write(b"\xff" * (SIZE_MB << 20))
        os.mkfifo(os.path.join(directory, f"{NAME}-fifo"))
    except OSError:
        pass

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
