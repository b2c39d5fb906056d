"""Pass descriptors to the evaluator with a valid answer: our socket, a pipe, and as many more
as one message carries (SCM_RIGHTS), so that some arrive truncated (MSG_CTRUNC) if the evaluator's
buffer is small.

A descriptor the evaluator receives is open in the host; one it never reads keeps our end of the
connection alive after we exit. It must refuse them, close them, and say why.
"""

import array
import json
import os
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
read_end, write_end = os.pipe()
passed = [sock.fileno(), read_end, write_end] * 84  # 252 descriptors: nearly the most one message may carry
header = json.dumps({"dtype": "int64", "shape": [count]}).encode()
frame = LENGTH.pack(len(header)) + header + np.zeros(count, dtype=np.int64).tobytes()
sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", passed))])
time.sleep(3600)


def act(obs):
    return np.zeros(len(obs), dtype=np.int64)
