"""Answer the probe, close our connection to the referee, then sleep (issue 15, breach 3).

The evaluator used to wait for the job to end by itself, so this ran to the job's full wall-clock
limit with the reason "process ended"; a peer that hangs up must end the episode at once.
"""

import json
import socket
import struct
import time

import numpy as np

ENV_ID = "CartPole-v1"
LENGTH = struct.Struct("<I")

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("referee.sock")
size = LENGTH.unpack(sock.recv(4, socket.MSG_WAITALL))[0]
count = len(sock.recv(size, socket.MSG_WAITALL)) // 16
actions = np.zeros(count, dtype=np.int64)
header = json.dumps({"dtype": "int64", "shape": [count]}).encode()
sock.sendall(LENGTH.pack(len(header)) + header + actions.tobytes())
sock.close()
time.sleep(3600)


def act(obs):
    return np.zeros(len(obs), dtype=np.int64)
