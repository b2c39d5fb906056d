"""Ignores every polite signal (SIGTERM, SIGINT, SIGHUP, SIGXCPU, SIGALRM, ...), then busy-loops in loss(b)."""

import signal

for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGXCPU", "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGUSR1",
             "SIGUSR2"):
    signal.signal(getattr(signal, name), signal.SIG_IGN)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    while True:
        pass
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
