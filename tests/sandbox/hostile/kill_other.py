"""SIGKILL to a host process that is none of its own (the test's victim): by pid, by process group, by -pid."""

import os
import signal

VICTIM = int("__VICTIM__")
refused = []
for kill in (lambda: os.kill(VICTIM, signal.SIGKILL), lambda: os.killpg(VICTIM, signal.SIGKILL),
             lambda: os.kill(-VICTIM, signal.SIGKILL)):
    try:
        kill()
    except OSError as err:
        refused.append(f"{type(err).__name__}: {err.strerror}")
if len(refused) == 3:
    raise PermissionError(f"every kill refused: {refused}")

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
