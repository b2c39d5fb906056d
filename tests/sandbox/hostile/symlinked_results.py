"""In its training job, replaces the files the host reads afterwards: its output with a symlink
to /dev/zero (an endless read), the weights a scorer would be given with a FIFO (a read that
blocks forever), and writes a result claiming success, then exits. The host must neither hang
nor follow; a symlink to /etc/shadow as the result of its probe job must not be read either.
"""

import json
import os

TRAINING = "evosearch-train" in os.getcwd()
if os.path.lexists("output.log"):
    os.unlink("output.log")
os.symlink("/dev/zero", "output.log")
if TRAINING:
    os.mkfifo("weights.npz")
    with open("result.json", "w") as f:
        json.dump({"status": "ok", "result": {"curve_steps": [2048], "curves": [[500.0], [500.0]]}}, f)
    os._exit(0)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
