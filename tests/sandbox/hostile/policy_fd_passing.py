"""Breach 3 of issue 15, as reported: talk to the referee ourselves, answer far ahead, pass our own
socket's descriptor back over it (SCM_RIGHTS), and exit.

While the descriptor sits unread in the evaluator's receive queue our end of the connection stays
open after we are gone, so the evaluator never sees end of file: it kept sending observations that
nobody read until its ``sendall`` blocked for good, past the job's wall-clock limit and the host's.
"""

import array
import json
import os
import socket
import struct

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
n_envs = len(read_frame(sock)) // 12  # the first step tells us how many environments play
ahead = answer(np.zeros((n_envs, 1), dtype=np.float32))
sock.setblocking(False)
sent = 0
try:
    for _ in range(2000):  # as many answers ahead as the socket takes
        sock.send(ahead)
        sent += 1
except BlockingIOError:
    pass
sock.setblocking(True)
sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]))])
os._exit(0)


def act(obs):
    return np.zeros((len(obs), 1), dtype=np.float32)
