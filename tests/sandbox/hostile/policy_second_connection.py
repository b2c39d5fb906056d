"""Play honestly, but on the first batch connect to the referee a second time and pass descriptors
and garbage over that connection: the evaluator talks to one connection only, and a second one is
refused or ignored, never read, never able to change what the first one scores."""

import array
import os
import socket
import struct

import numpy as np

ENV_ID = "CartPole-v1"
TRIED = []


def intrude():
    extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        extra.connect("referee.sock")
        read_end, write_end = os.pipe()
        extra.sendmsg([struct.pack("<I", 8) + b"garbage!"],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [read_end, write_end]))])
        TRIED.append("connected")  # kept open: the descriptors stay in flight
    except OSError as err:
        TRIED.append(type(err).__name__)
        extra.close()


def act(obs):
    if not TRIED:
        intrude()
    x, x_dot, theta, theta_dot = obs[:, 0], obs[:, 1], obs[:, 2], obs[:, 3]
    return (1.0 * theta + 0.5 * theta_dot + 0.05 * x + 0.2 * x_dot > 0).astype(np.int64)
