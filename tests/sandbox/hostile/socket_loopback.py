"""A TCP connection to a server the test runs on the host's 127.0.0.1."""

import socket

with socket.create_connection(("127.0.0.1", int("__PORT__")), timeout=3) as conn:
    conn.sendall(b"evosearch-pwned\n")

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
