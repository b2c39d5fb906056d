"""Announce a 40-byte answer header, send 10 bytes of it, and stall: the answer's deadline must hold
for the bytes that never come, not only for the first one."""

import socket
import struct
import time

import numpy as np

ENV_ID = "CartPole-v1"

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("referee.sock")
size = struct.unpack("<I", sock.recv(4, socket.MSG_WAITALL))[0]
sock.recv(size, socket.MSG_WAITALL)
sock.sendall(struct.pack("<I", 40) + b'{"dtype":')
time.sleep(3600)


def act(obs):
    return np.zeros(len(obs), dtype=np.int64)
