"""Leaves something running: a daemon (double fork, setsid) holding 64 MiB, else a thread that does.

The daemon is outside the job's process group, so a group kill misses it; where fork is refused
(seccomp) a non-daemon thread spins instead, holding the same memory. Either must be gone
before the next job on the worker starts. It trains honestly.
"""

import os
import threading
import time

HOLD_MB = 64


def hold() -> None:
    block = bytearray(b"\xff" * (HOLD_MB << 20))
    while block:
        time.sleep(0.05)


try:
    child = os.fork()
except OSError:
    child = None
if child == 0:
    os.setsid()
    if os.fork() == 0:
        hold()
    os._exit(0)
elif child is None:
    threading.Thread(target=hold, daemon=False).start()
else:
    os.waitpid(child, 0)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
