"""Answer far ahead of the questions, then stop reading (issue 15, breach 3, without exiting).

Every answer the evaluator takes makes it send another batch of observations that we never read;
once our receive queue is full its send blocks. A bare ``sendall`` blocked past every limit; a send
must have the same deadline as an answer.
"""

import json
import socket
import struct
import time

import numpy as np

ENV_ID = "Pendulum-v1"
LENGTH = struct.Struct("<I")


def read_frame(sock):
    size = LENGTH.unpack(sock.recv(4, socket.MSG_WAITALL))[0]
    return sock.recv(size, socket.MSG_WAITALL)


def answer(actions):
    header = json.dumps({"dtype": str(actions.dtype), "shape": list(actions.shape)}).encode()
    return LENGTH.pack(len(header)) + header + actions.tobytes()


sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("referee.sock")
probe = read_frame(sock)
sock.sendall(answer(np.zeros((len(probe) // 12, 1), dtype=np.float32)))
n_envs = len(read_frame(sock)) // 12
ahead = answer(np.zeros((n_envs, 1), dtype=np.float32))
sock.setblocking(False)
try:
    for _ in range(5000):
        sock.send(ahead)
except BlockingIOError:
    pass
time.sleep(3600)  # never read again, never exit


def act(obs):
    return np.zeros((len(obs), 1), dtype=np.float32)
