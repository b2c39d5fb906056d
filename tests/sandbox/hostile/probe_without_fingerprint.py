"""Reports success with an empty result (no fingerprint) and ends its process before the harness can.

The host read the report as ``result["fingerprint"]`` and crashed with KeyError; the report
comes from the candidate's own process, so it must be checked like any untrusted data.
"""

import json
import os

with open("result.json", "w") as f:
    json.dump({"status": "ok", "result": {}}, f)
os._exit(0)


def loss(b):
    return -(b.logp * b.adv).mean()
