"""Leaves POSIX shared memory behind (what shm_open makes: files in /dev/shm) and tries a POSIX message queue.

/dev/shm is a tmpfs: its files are memory, charged to the job's slot and kept until someone
removes them. Four objects of 32 MiB (each under the per-file size limit), as many as fit. The
message queue would outlive the job in a shared IPC namespace. Where a call is refused, it
trains honestly.
"""

import ctypes
import os

OBJECTS = 4
OBJECT_MB = 32
NAME = "evosearch-leak-posix"
O_CREAT_RDWR = os.O_CREAT | os.O_RDWR

for i in range(OBJECTS):
    try:
        fd = os.open(f"/dev/shm/{NAME}-{i}", O_CREAT_RDWR, 0o666)  # shm_open, as glibc does it
        try:
            os.write(fd, b"\xff" * (OBJECT_MB << 20))  # written, not mapped: a full tmpfs says ENOSPC, not SIGBUS
        finally:
            os.close(fd)
    except OSError:
        break
try:
    librt = ctypes.CDLL("librt.so.1", use_errno=True)
    librt.mq_open(f"/{NAME}".encode(), O_CREAT_RDWR, 0o666, None)
except OSError:
    pass

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
