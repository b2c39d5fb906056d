"""Writes the job's result file itself (status ok, a made-up fingerprint and curves), then os._exit(0).

Every job it runs in claims success; the training job leaves no weights behind.
"""

import json
import os

with open("result.json", "w") as f:
    json.dump({"status": "ok", "result": {"fingerprint": "evosearch-pwned", "vmap": True, "curve_steps": [2048],
                                          "curves": [[500.0], [500.0]], "env_steps": 2048, "wall_s": 0.1,
                                          "used_vmap": True, "returns": [500.0, 500.0]}}, f)
os._exit(0)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
