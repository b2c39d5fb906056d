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

The other end may be written by an attacker who has read this file (issue 15), so the host never
waits on it without a deadline: the socket is non-blocking, and every send and receive waits in
``poll`` until the answer's deadline or the job's wall-clock limit, whichever comes first. Each
wait also watches the policy's process (a pidfd for the connection's peer), because end of file
alone cannot say that the peer is gone: a descriptor of the job's socket in flight keeps that
socket open after the job has exited. Descriptors passed over the socket (``SCM_RIGHTS``) are
closed on arrival and end the evaluation as the policy's error. One connection per job: the
listener closes once it has accepted one.
"""

from __future__ import annotations

import array
import contextlib
import json
import math
import os
import select
import socket
import struct
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from evosearch.envs.spaces import EnvSpaces

LENGTH = struct.Struct("<I")
PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
SOCKET_NAME = "referee.sock"
MAX_HEADER_BYTES = 256  # this bounds the header's JSON nesting too (128 levels at most)
MAX_DIMS = 3
VALUES_PER_OBSERVATION = 64  # an answer holds at most this many values for each observation asked
ACTION_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64")
#: Room for as many descriptors as one message can carry (the kernel's SCM_MAX_FD), so that each one
#: arrives here and is closed by us; any beyond the room the kernel closes itself, flagging MSG_CTRUNC.
MAX_PASSED_FDS = 253
ACCEPT_POLL_S = 0.1  # how often the wait for the connection asks whether the job ended without one
ENDED = "the policy's process ended during the episode"
CLOSED = "the policy's process closed its connection during the episode"
PAST_WALL = "the policy's episodes did not end within the job's wall-clock limit"


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


# -- the answer header: untrusted JSON, checked against a schema before any of it is used -----------


def _shown(value: object) -> str:
    """A header value as an error message may show it: short, and a plain word only as itself."""
    if isinstance(value, str) and value.isascii() and value.isprintable() and len(value) <= 32:
        return value
    return ascii(value)[:80]


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_header(raw: bytes, n_obs: int) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an answer header announces, or a PolicyError naming what is wrong.

    The header is the policy's word, so it is held to a schema before use: exactly the keys
    ``dtype`` (one of :data:`ACTION_DTYPES`, by name) and ``shape`` (a list of at most
    :data:`MAX_DIMS` JSON integers, booleans and floats excluded), each dimension and their exact
    product at most :data:`VALUES_PER_OBSERVATION` per observation asked. Python's ``json`` alone
    would take ``Infinity`` (``int(inf)`` raises OverflowError) and ``np.prod`` wraps
    ``[2**32, 2**32]`` to 0 (a reshape that raises ValueError): both once crashed the host.
    """
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise PolicyError(f"the policy's answer is malformed: its header is not plain JSON ({str(err)[:80]})") from err
    if not isinstance(header, dict) or set(header) != {"dtype", "shape"}:
        keys = sorted(map(str, header))[:4] if isinstance(header, dict) else type(header).__name__
        raise PolicyError(f'the policy\'s answer is malformed: its header must hold exactly "dtype" and "shape", '
                          f"not {_shown(keys)}")
    dtype, shape = header["dtype"], header["shape"]
    if not isinstance(dtype, str) or dtype not in ACTION_DTYPES:
        raise PolicyError(f"act(obs) returned an array of dtype {_shown(dtype)}; expected a numeric array "
                          f"({', '.join(ACTION_DTYPES)})")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or any(type(d) is not int for d in shape):
        raise PolicyError(f"the policy's answer is malformed: its shape {_shown(shape)} is not a list of at most "
                          f"{MAX_DIMS} whole numbers")
    limit = VALUES_PER_OBSERVATION * max(1, n_obs)
    if any(d < 0 for d in shape):
        raise PolicyError(f"the policy's answer is malformed: its shape {_shown(shape)} has a negative dimension")
    if any(d > limit for d in shape) or math.prod(shape) > limit:
        raise PolicyError(f"act(obs) returned an array of shape {_shown(shape)} for {n_obs} observations: "
                          f"more than {limit} values")
    return np.dtype(dtype), tuple(shape)


# -- the evaluator's end ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """When a wait must end, and the reason a PolicyTimeout gives if it does."""

    at: float
    reason: str


def _poll_ms(seconds: float) -> int:
    """``seconds`` as poll's timeout: whole milliseconds, rounded up so a wait never ends early; -1 for ever."""
    return -1 if seconds == math.inf else min(math.ceil(max(0.0, seconds) * 1000), 2**31 - 1)


def _ready(fd: int, timeout: float) -> bool:
    """Whether ``fd`` is readable within ``timeout`` s (``poll``: a host may hold descriptors past 1024)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(_poll_ms(timeout)))


def _peer_pidfd(conn: socket.socket) -> int | None:
    """A pidfd for the process that connected; None where there is none to be had.

    The pid comes from the kernel (``SO_PEERCRED``, as this process sees it, so a job in a pid
    namespace of its own is named by its pid here). A peer that is already gone raises PolicyGone.
    """
    try:
        pid = PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))[0]
    except (AttributeError, OSError):
        return None
    if pid <= 0:  # not visible from our pid namespace
        return None
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError as err:
        raise PolicyGone(ENDED) from err
    except (AttributeError, OSError):  # no pidfd (an old kernel): the deadlines still hold
        return None


def _refuse_descriptors(ancillary: list[tuple[int, int, bytes]], flags: int) -> None:
    """Close every descriptor the policy passed with its bytes; PolicyError if it passed any.

    A descriptor received is open in the host until closed, and one left unread keeps the job's
    socket alive after the job, so none is kept and the policy is told why it failed.
    """
    passed: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            passed.extend(fds)
    for fd in passed:
        with contextlib.suppress(OSError):
            os.close(fd)
    if ancillary or flags & socket.MSG_CTRUNC:
        more = " and more the kernel dropped" if flags & socket.MSG_CTRUNC else ""
        raise PolicyError(f"the policy passed {len(passed)} file descriptor(s){more} over the referee's socket; "
                          "descriptors are refused (closed unread)")


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
        self.sock.setblocking(False)

    def accept(self, timeout: float, until: float = math.inf,
               ended: Callable[[], bool] | None = None) -> Channel:
        """The job's connection, then no other: the listener closes behind it.

        Waits at most ``timeout``, and never past ``until`` (the job's wall-clock limit, on the
        monotonic clock); ``ended`` says whether the job has ended without connecting (it failed
        to load), so that the wait stops then rather than at the timeout.
        """
        give_up = Due(min(time.monotonic() + timeout, until),
                      f"the policy's process did not connect within {timeout:.0f} s")
        while True:
            remaining = give_up.at - time.monotonic()
            if remaining <= 0:
                raise PolicyTimeout(give_up.reason)
            if _ready(self.sock.fileno(), min(remaining, ACCEPT_POLL_S)):
                try:
                    conn, _ = self.sock.accept()
                except BlockingIOError:
                    continue
                self.close()
                return Channel(conn, until)
            if ended is not None and ended():
                raise PolicyGone("the policy's job wrote its result without connecting to the referee")

    def close(self) -> None:
        self.sock.close()


class Channel:
    """One connection to a policy's process; every send and receive has a deadline.

    ``until`` is the latest any wait may end (the job's wall-clock limit); each call adds its
    own, shorter one (the answer timeout).
    """

    def __init__(self, conn: socket.socket, until: float = math.inf) -> None:
        self.conn = conn
        self.until = until
        self.pidfd: int | None = None
        conn.setblocking(False)
        try:
            self.pidfd = _peer_pidfd(conn)
        except PolicyGone:
            conn.close()
            raise
        self._readable = self._poller(select.POLLIN)
        self._writable = self._poller(select.POLLOUT)

    def _poller(self, event: int) -> select.poll:
        poller = select.poll()
        poller.register(self.conn, event)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        return poller

    def due(self, timeout: float, reason: str) -> Due:
        """The deadline ``timeout`` from now, or the job's own when that comes first."""
        at = time.monotonic() + timeout
        return Due(at, reason) if at < self.until else Due(self.until, PAST_WALL)

    def _wait(self, poller: select.poll, due: Due) -> None:
        """Until the connection is ready (or hung up); PolicyGone once the policy's process has ended."""
        while True:
            remaining = due.at - time.monotonic()
            if remaining <= 0:
                raise PolicyTimeout(due.reason)
            ready = dict(poller.poll(_poll_ms(remaining)))
            if self.pidfd is not None and self.pidfd in ready:
                raise PolicyGone(ENDED)
            if ready:
                return

    def peer_ended(self, timeout: float) -> bool:
        """Whether the policy's process ends within ``timeout`` (False at once where it cannot be watched)."""
        return self.pidfd is not None and _ready(self.pidfd, timeout)

    def _recv_exactly(self, size: int, due: Due) -> bytes:
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        while got < size:
            self._wait(self._readable, due)
            try:
                count, ancillary, flags, _ = self.conn.recvmsg_into(
                    [view[got:]], socket.CMSG_SPACE(MAX_PASSED_FDS * 4), socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as err:
                raise PolicyGone(CLOSED) from err
            _refuse_descriptors(ancillary, flags)
            if count == 0:
                raise PolicyGone(CLOSED)
            got += count
        return bytes(buffer)

    def _send_all(self, data: bytes, due: Due) -> None:
        view = memoryview(data)
        while view:
            self._wait(self._writable, due)
            try:
                sent = self.conn.send(view, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as err:  # EPIPE, ECONNRESET: the policy hung up
                raise PolicyGone(CLOSED) from err
            view = view[sent:]

    def send_observations(self, obs: np.ndarray, timeout: float) -> None:
        """Send a batch; a policy that leaves its observations unread for ``timeout`` has timed out."""
        body = np.ascontiguousarray(obs, dtype=np.float32).tobytes()
        self._send_all(LENGTH.pack(len(body)) + body,
                       self.due(timeout, f"the policy did not read its observations within {timeout:g} s"))

    def receive_actions(self, n_envs: int, timeout: float) -> np.ndarray:
        """The next answer, whole within ``timeout``; its header is checked (:func:`parse_header`) before the body
        is read, so the body's size is one the evaluator agreed to."""
        due = self.due(timeout, f"act(obs) did not answer in time ({timeout:g} s)")
        (header_len,) = LENGTH.unpack(self._recv_exactly(LENGTH.size, due))
        if header_len > MAX_HEADER_BYTES:
            raise PolicyError(f"the policy's answer is malformed: a header of {header_len} bytes "
                              f"(at most {MAX_HEADER_BYTES})")
        dtype, shape = parse_header(self._recv_exactly(header_len, due), n_envs)
        body = self._recv_exactly(math.prod(shape) * dtype.itemsize, due)
        return np.frombuffer(body, dtype=dtype).reshape(shape)

    def close(self) -> None:
        """Close the connection (whatever the policy left unread in it goes with it) and the pidfd."""
        self.conn.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def load_policy(source: str, filename: str = "<policy>", *,
                minimal_builtins: bool = True) -> Callable[[np.ndarray], object]:
    """Execute policy source in a fresh module and return its ``act``; only ever inside a sandboxed job.

    The module sees minimal builtins and may import numpy and math only (``minimal_builtins=False``
    exists to test the OS layers alone).
    """
    module = types.ModuleType("evosearch_candidate_policy")
    module.__file__ = filename
    if minimal_builtins:
        from evosearch.allowlist import minimal_builtins as builtins_for
        from evosearch.kinds.policy import KIND

        module.__dict__["__builtins__"] = builtins_for(KIND.allowed_imports)
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
