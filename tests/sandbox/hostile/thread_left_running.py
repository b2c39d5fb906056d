"""Starts a non-daemon thread that loops forever, then trains honestly."""

import threading
import time


def forever():
    while True:
        time.sleep(0.01)


threading.Thread(target=forever, daemon=False).start()

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
