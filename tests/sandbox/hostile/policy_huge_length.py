"""Announce an answer header of 4 GiB (the largest length a frame can state), then wait: the
evaluator must not try to read or allocate it."""

import socket
import struct
import time

import numpy as np

ENV_ID = "CartPole-v1"

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("referee.sock")
size = struct.unpack("<I", sock.recv(4, socket.MSG_WAITALL))[0]
sock.recv(size, socket.MSG_WAITALL)
sock.sendall(struct.pack("<I", 0xFFFFFFFF) + b"{" * 4096)
time.sleep(3600)


def act(obs):
    return np.zeros(len(obs), dtype=np.int64)
