"""Write a result file, as a job does when it ends, then sleep without ever connecting.

The referee stops waiting for a connection once a job has written its result (a policy that failed
to load never connects), so this is a sign a job can fake: it must not let the job run on to its
wall-clock limit, only as long as an honest job needs to exit after writing its result.
"""

import json
import time

import numpy as np

ENV_ID = "CartPole-v1"

with open("result.json", "w") as f:
    json.dump({"status": "ok", "result": {"batches": 0}}, f)
time.sleep(3600)


def act(obs):
    return np.zeros(len(obs), dtype=np.int64)
