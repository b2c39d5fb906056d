"""The referee: the harness plays a policy program's episodes; the candidate only answers ``act(obs)``.

A policy is untrusted code, so it never sees the environment. Its job (a sandboxed process)
connects to a Unix socket the evaluator listens on, and the two exchange frames: the
evaluator sends a batch of observations, the job calls ``act`` and sends back whatever it
returned. Everything that decides the score stays on this side: stepping the environment,
summing rewards, checking that the actions are actions. A policy that hangs, dies, or
answers with the wrong shape or type ends its evaluation with a reason that says so.

Frames are a 4-byte little-endian length and a body. Observations go as raw float32 (the
job knows the batch shape from its payload); actions come back as a short JSON header
(``dtype``, ``shape``) and the raw bytes, both bounded in size and checked before use.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from evosearch.envs.spaces import EnvSpaces

LENGTH = struct.Struct("<I")
SOCKET_NAME = "referee.sock"
MAX_HEADER_BYTES = 256
ACTION_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64")


class PolicyError(Exception):
    """The policy broke its contract: an answer that is not a batch of valid actions."""


class PolicyTimeout(PolicyError):
    """The policy did not answer in time."""


class PolicyGone(PolicyError):
    """The policy's process closed the connection (it raised, exited, or was killed)."""


def check_actions(actions: np.ndarray, n_envs: int, space: EnvSpaces) -> np.ndarray:
    """``actions`` as the environment wants them, or a PolicyError saying what is wrong.

    ``space`` is the environment's (:func:`evosearch.envs.spaces.spaces`), never the policy's
    say. Discrete: ``[n_envs]`` (or ``[n_envs, 1]``) whole numbers in ``[0, act_dim)``.
    Continuous: ``[n_envs, act_dim]`` (or ``[n_envs]`` when ``act_dim == 1``) finite numbers,
    clipped to the bounds as gymnasium's own wrappers would.
    """
    n = space.act_dim
    if actions.dtype == bool or actions.dtype.kind not in "iuf":
        raise PolicyError(f"act(obs) returned dtype {actions.dtype}; expected numbers")
    if space.discrete:
        if actions.shape == (n_envs, 1):
            actions = actions[:, 0]
        if actions.shape != (n_envs,):
            raise PolicyError(f"act(obs) returned shape {actions.shape} for {n_envs} observations; "
                              f"expected ({n_envs},): one discrete action per environment")
        if not np.isfinite(actions).all() or (actions != np.round(actions)).any():
            raise PolicyError("act(obs) returned non-integer discrete actions")
        if (actions < 0).any() or (actions >= n).any():
            bad = actions[(actions < 0) | (actions >= n)][0]
            raise PolicyError(f"act(obs) returned action {bad!r}; valid actions are 0..{n - 1}")
        return actions.astype(np.int32)
    if n == 1 and actions.shape == (n_envs,):
        actions = actions[:, None]
    if actions.shape != (n_envs, n):
        raise PolicyError(f"act(obs) returned shape {actions.shape} for {n_envs} observations; "
                          f"expected ({n_envs}, {n})")
    if not np.isfinite(actions).all():
        raise PolicyError("act(obs) returned NaN or infinite actions")
    return np.clip(actions.astype(np.float32), space.action_low, space.action_high)


class Listener:
    """The evaluator's end: a listening socket in the job's scratch directory.

    Bound through ``/proc/self/fd`` because a scratch path can be longer than the 108 bytes
    a Unix socket address holds.
    """

    def __init__(self, directory: str, owner_uid: int | None = None) -> None:
        self.path = os.path.join(directory, SOCKET_NAME)
        dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}")
        finally:
            os.close(dir_fd)
        if owner_uid is not None:  # the job runs as a uid of its own: the socket must be its to connect to
            os.chown(self.path, owner_uid, owner_uid)
        self.sock.listen(1)

    def accept(self, timeout: float) -> Channel:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            raise PolicyTimeout(f"the policy's process did not connect within {timeout:.0f} s")
        conn, _ = self.sock.accept()
        return Channel(conn)

    def close(self) -> None:
        self.sock.close()


class Channel:
    """One connection to a policy's process; every read has a deadline."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def _recv_exactly(self, size: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.conn], [], [], remaining)[0]:
                raise PolicyTimeout("act(obs) did not answer in time")
            chunk = self.conn.recv(min(size - got, 1 << 20))
            if not chunk:
                raise PolicyGone("the policy's process ended during the episode")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def send_observations(self, obs: np.ndarray) -> None:
        body = np.ascontiguousarray(obs, dtype=np.float32).tobytes()
        try:
            self.conn.sendall(LENGTH.pack(len(body)) + body)
        except OSError as err:
            raise PolicyGone("the policy's process ended during the episode") from err

    def receive_actions(self, n_envs: int, timeout: float) -> np.ndarray:
        deadline = time.monotonic() + timeout
        (header_len,) = LENGTH.unpack(self._recv_exactly(LENGTH.size, deadline))
        if header_len > MAX_HEADER_BYTES:
            raise PolicyError("the policy's answer is malformed (header too long)")
        try:
            header = json.loads(self._recv_exactly(header_len, deadline))
            dtype = np.dtype(header["dtype"])
            shape = tuple(int(x) for x in header["shape"])
        except (ValueError, KeyError, TypeError) as err:
            raise PolicyError("the policy's answer is malformed (bad header)") from err
        if header["dtype"] not in ACTION_DTYPES or len(shape) > 3 or any(x < 0 for x in shape):
            raise PolicyError(f"act(obs) returned an array of dtype {header['dtype']} and shape {shape}; "
                              "expected a numeric array")
        count = int(np.prod(shape)) if shape else 1
        if count > 64 * max(1, n_envs):
            raise PolicyError(f"act(obs) returned {count} values for {n_envs} observations")
        body = self._recv_exactly(count * dtype.itemsize, deadline)
        return np.frombuffer(body, dtype=dtype).reshape(shape)

    def close(self) -> None:
        self.conn.close()


def load_policy(source: str, filename: str = "<policy>") -> Callable[[np.ndarray], object]:
    """Execute policy source in a fresh module and return its ``act``; only ever inside a sandboxed job."""
    module = types.ModuleType("evosearch_candidate_policy")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - sandboxed job only
    act = module.__dict__.get("act")
    if not callable(act):
        raise PolicyError("the policy defines no function `act(obs)`")
    return act


def serve(act: Callable[[np.ndarray], object], obs_dim: int, address: str = SOCKET_NAME) -> int:
    """The job's end: answer observation batches with ``act`` until the evaluator hangs up.

    Runs inside the sandboxed job, in the candidate's process, so nothing here is trusted: the
    evaluator checks every answer. Returns the number of batches answered.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address)
    answered = 0
    reader = sock.makefile("rb")
    while True:
        prefix = reader.read(LENGTH.size)
        if len(prefix) < LENGTH.size:
            return answered  # the evaluator is done
        (size,) = LENGTH.unpack(prefix)
        obs = np.frombuffer(reader.read(size), dtype=np.float32).reshape(-1, obs_dim)
        actions = np.asarray(act(obs.copy()))
        header = json.dumps({"dtype": str(actions.dtype), "shape": list(actions.shape)}).encode()
        sock.sendall(LENGTH.pack(len(header)) + header + np.ascontiguousarray(actions).tobytes())
        answered += 1
