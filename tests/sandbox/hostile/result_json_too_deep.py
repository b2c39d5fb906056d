"""Writes a result file of 200,000 nested '[' and ends its process: json's parser recurses on it.

Parsing it in the host raised RecursionError, which crashed the evaluation; an unreadable
report must read as no report (the job's fault), never as an exception in the host.
"""

import os

with open("result.json", "w") as f:
    f.write("[" * 200_000)
os._exit(0)


def loss(b):
    return -(b.logp * b.adv).mean()
