"""A TCP connection to an address outside the machine (1.1.1.1:53)."""

import socket

with socket.create_connection(("1.1.1.1", 53), timeout=3) as conn:
    conn.sendall(b"\x00")

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
