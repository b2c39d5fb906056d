"""The referee's end of the socket against a peer that does not play by the rules (issue 15).

Real sockets throughout (a socketpair, or the Listener in a temporary directory); a separate
process where the peer must be one that ends. No test here waits for more than a second or two:
every deadline asked for is short, and each bound on how long something took is several times it.
"""

from __future__ import annotations

import array
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from evosearch.evaluate import referee
from evosearch.evaluate.referee import (
    CLOSED,
    ENDED,
    LENGTH,
    PAST_WALL,
    Channel,
    Listener,
    PolicyError,
    PolicyGone,
    PolicyTimeout,
    parse_header,
)

SHORT_S = 0.3  # a deadline a test waits out
SLACK_S = 3.0  # "it ended promptly": well under this, on any machine


def open_fds() -> set[str]:
    """This process's open descriptors, each with what it points to (a received descriptor left open shows)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add(f"{name} -> {os.readlink(f'/proc/self/fd/{name}')}")
        except OSError:
            pass  # the descriptor listdir itself used
    return found


def answer(actions: np.ndarray) -> bytes:
    header = json.dumps({"dtype": str(actions.dtype), "shape": list(actions.shape)}).encode()
    return LENGTH.pack(len(header)) + header + actions.tobytes()


def raw_header(header: bytes) -> bytes:
    return LENGTH.pack(len(header)) + header


@pytest.fixture
def pair():
    """(the referee's Channel, the policy's end): a connected socketpair."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    channel = Channel(ours)
    yield channel, theirs
    channel.close()
    theirs.close()


# -- the header's schema ---------------------------------------------------------------------------

BAD_HEADERS = {
    "shape 2**32 x 2**32 (np.prod wraps to 0)": (b'{"dtype": "int64", "shape": [4294967296, 4294967296]}',
                                                  "more than 16384 values"),
    "Infinity": (b'{"dtype": "int64", "shape": [Infinity]}', "Infinity is not a JSON number"),
    "-Infinity": (b'{"dtype": "int64", "shape": [-Infinity]}', "-Infinity is not a JSON number"),
    "NaN": (b'{"dtype": "int64", "shape": [NaN]}', "NaN is not a JSON number"),
    "a float that is infinite": (b'{"dtype": "int64", "shape": [1e400]}', "not a list of at most 3 whole numbers"),
    "a float": (b'{"dtype": "int64", "shape": [256.0]}', "not a list of at most 3 whole numbers"),
    "a boolean": (b'{"dtype": "int64", "shape": [true]}', "not a list of at most 3 whole numbers"),
    "a string": (b'{"dtype": "int64", "shape": ["256"]}', "not a list of at most 3 whole numbers"),
    "a nested list": (b'{"dtype": "int64", "shape": [[256]]}', "not a list of at most 3 whole numbers"),
    "not a list": (b'{"dtype": "int64", "shape": 256}', "not a list of at most 3 whole numbers"),
    "four dimensions": (b'{"dtype": "int64", "shape": [1, 1, 1, 256]}', "at most 3 whole numbers"),
    "negative": (b'{"dtype": "int64", "shape": [-1, -256]}', "negative dimension"),
    "one dimension too large": (b'{"dtype": "int64", "shape": [0, 99999]}', "more than 16384 values"),
    "a product too large": (b'{"dtype": "int64", "shape": [128, 129]}', "more than 16384 values"),
    "a huge integer": (b'{"dtype": "int64", "shape": [' + b"9" * 200 + b"]}", "more than 16384 values"),
    "dtype float128": (b'{"dtype": "float128", "shape": [256]}', "dtype float128"),
    "dtype with a byte order": (b'{"dtype": ">i8", "shape": [256]}', "dtype >i8"),
    "dtype object": (b'{"dtype": "object", "shape": [256]}', "dtype object"),
    "dtype structured": (b'{"dtype": [["a", "f8"]], "shape": [256]}', "dtype [['a', 'f8']]"),
    "dtype with control characters": (b'{"dtype": "\\u001b[2J", "shape": [256]}', "dtype '\\x1b[2J'"),
    "an extra key": (b'{"dtype": "int64", "shape": [256], "x": 1}', 'exactly "dtype" and "shape"'),
    "a missing key": (b'{"dtype": "int64"}', 'exactly "dtype" and "shape"'),
    "a list": (b'["int64", [256]]', "not list"),
    "nested 120 deep": (b"[" * 120 + b"]" * 120, "not list"),
    "not JSON": (b'{"dtype": ', "not plain JSON"),
    "not UTF-8": (b'{"dtype": "\xff"}', "not plain JSON"),
}


@pytest.mark.parametrize("name", list(BAD_HEADERS))
def test_a_bad_header_is_the_policys_error_naming_what_is_wrong(name):
    raw, message = BAD_HEADERS[name]
    assert len(raw) <= referee.MAX_HEADER_BYTES
    with pytest.raises(PolicyError) as caught:
        parse_header(raw, 256)
    assert type(caught.value) is PolicyError  # neither a timeout nor a hang-up: a candidate_error
    assert message in str(caught.value)


def test_good_headers_are_taken_as_they_are():
    assert parse_header(b'{"dtype": "int64", "shape": [256]}', 256) == (np.dtype("int64"), (256,))
    assert parse_header(b'{"shape": [6, 1], "dtype": "float32"}', 6) == (np.dtype("float32"), (6, 1))
    assert parse_header(b'{"dtype": "bool", "shape": []}', 6) == (np.dtype("bool"), ())  # check_actions says why not
    assert parse_header(b'{"dtype": "float64", "shape": [128, 128]}', 256)[1] == (128, 128)  # 16384: the limit


# -- answers over a real socket ----------------------------------------------------------------------


def test_an_honest_exchange(pair):
    channel, theirs = pair
    channel.send_observations(np.ones((3, 4)), SHORT_S)
    size = LENGTH.unpack(theirs.recv(4))[0]
    assert size == 3 * 4 * 4 and np.frombuffer(theirs.recv(size), dtype=np.float32).tolist() == [1.0] * 12
    theirs.sendall(answer(np.array([0, 1, 1])))
    assert channel.receive_actions(3, SHORT_S).tolist() == [0, 1, 1]
    theirs.sendall(answer(np.array([1, 0, 1])))
    assert channel.receive_actions(3, math.inf).tolist() == [1, 0, 1]  # no deadline at all is poll's -1


def test_a_huge_length_is_refused_before_anything_is_read(pair):
    channel, theirs = pair
    theirs.sendall(LENGTH.pack(0xFFFFFFFF) + b"{" * 1000)
    with pytest.raises(PolicyError, match="a header of 4294967295 bytes"):
        channel.receive_actions(3, SHORT_S)


def test_a_partial_header_times_out_at_the_answers_deadline(pair):
    channel, theirs = pair
    theirs.sendall(LENGTH.pack(40) + b'{"dtype":')
    start = time.monotonic()
    with pytest.raises(PolicyTimeout, match="did not answer in time"):
        channel.receive_actions(3, SHORT_S)
    assert SHORT_S <= time.monotonic() - start < SLACK_S


def test_a_trickled_answer_times_out_though_each_byte_is_on_time(pair):
    """The deadline is the answer's, not each read's: a byte every 0.05 s does not extend it."""
    channel, theirs = pair
    frame = answer(np.zeros(3, dtype=np.int64))
    stop = threading.Event()

    def trickle() -> None:
        for i in range(len(frame)):
            if stop.wait(0.05):
                return
            theirs.send(frame[i:i + 1])

    thread = threading.Thread(target=trickle)
    thread.start()
    start = time.monotonic()
    try:
        with pytest.raises(PolicyTimeout, match="did not answer in time"):
            channel.receive_actions(3, SHORT_S)
        assert SHORT_S <= time.monotonic() - start < SLACK_S
    finally:
        stop.set()
        thread.join()


def test_a_peer_that_never_reads_times_out_in_send(pair):
    """The referee's send has the answer's deadline: no bare sendall that blocks for good."""
    channel, theirs = pair
    start = time.monotonic()
    with pytest.raises(PolicyTimeout, match="did not read its observations within 0.3 s"):
        for _ in range(10_000):  # 1.6 MB: far more than a socket buffer holds
            channel.send_observations(np.zeros((100, 4)), SHORT_S)
    assert SHORT_S <= time.monotonic() - start < SLACK_S


def test_the_jobs_wall_limit_bounds_every_wait():
    ours, theirs = socket.socketpair()
    channel = Channel(ours, until=time.monotonic() + SHORT_S)
    try:
        start = time.monotonic()
        with pytest.raises(PolicyTimeout, match=PAST_WALL):
            channel.receive_actions(3, 60.0)
        with pytest.raises(PolicyTimeout, match=PAST_WALL):
            channel.send_observations(np.zeros((3, 4)), 60.0)
        assert time.monotonic() - start < SLACK_S
    finally:
        channel.close()
        theirs.close()


@pytest.mark.parametrize("when", ["receive", "send"])
def test_a_peer_that_hangs_up_ends_the_exchange_at_once(pair, when):
    channel, theirs = pair
    theirs.close()
    start = time.monotonic()
    with pytest.raises(PolicyGone, match=CLOSED):
        if when == "receive":
            channel.receive_actions(3, 30.0)
        else:
            channel.send_observations(np.zeros((3, 4)), 30.0)
    assert time.monotonic() - start < SLACK_S


def test_descriptors_passed_with_an_answer_are_refused_and_closed(pair):
    channel, theirs = pair
    before = open_fds()
    read_end, write_end = os.pipe()
    try:
        theirs.sendmsg([answer(np.zeros(3, dtype=np.int64))],
                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [theirs.fileno(), read_end]))])
    finally:
        os.close(read_end)
        os.close(write_end)
    with pytest.raises(PolicyError, match=r"passed 2 file descriptor\(s\) over the referee's socket") as caught:
        channel.receive_actions(3, SHORT_S)
    assert type(caught.value) is PolicyError
    assert open_fds() == before, "a descriptor the policy passed is still open in the host"


def test_descriptors_beyond_the_buffer_are_dropped_by_the_kernel_and_still_refused(pair, monkeypatch):
    """MSG_CTRUNC: descriptors that do not fit the ancillary buffer are closed by the kernel, not lost open."""
    monkeypatch.setattr(referee, "MAX_PASSED_FDS", 1)
    channel, theirs = pair
    before = open_fds()
    read_end, write_end = os.pipe()
    try:
        theirs.sendmsg([b"\x10\x00\x00\x00"],
                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [read_end, write_end] * 8))])
    finally:
        os.close(read_end)
        os.close(write_end)
    with pytest.raises(PolicyError, match="and more the kernel dropped"):
        channel.receive_actions(3, SHORT_S)
    assert open_fds() == before


# -- a peer that is a process of its own --------------------------------------------------------------

PEER = textwrap.dedent("""
    import array, os, socket, sys, time
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])
    if sys.argv[2] == "pass-own-socket-and-exit":  # issue 15, breach 3: our end outlives us, in flight
        sock.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]))])
        os._exit(0)
    if sys.argv[2] == "connect-twice":
        second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        time.sleep(0.5)  # the referee has accepted the first by now
        try:
            second.connect(sys.argv[1])
            print("connected", flush=True)
        except OSError as err:
            print(type(err).__name__, flush=True)
    time.sleep(30)
""")


def start_peer(directory: Path, how: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PEER, str(directory / referee.SOCKET_NAME), how],
                            stdout=subprocess.PIPE, text=True)


def test_a_peer_whose_socket_outlives_it_is_seen_to_end(tmp_path):
    """Breach 3 as reported: the peer passes its own socket back and exits; no end of file ever comes,
    so only the peer's process tells the referee, at once, instead of a send that blocks for good."""
    listener = Listener(str(tmp_path))
    peer = start_peer(tmp_path, "pass-own-socket-and-exit")
    channel = listener.accept(10.0)
    try:
        assert channel.pidfd is not None
        peer.wait(10)
        start = time.monotonic()
        with pytest.raises(PolicyGone, match=ENDED):
            for _ in range(10_000):
                channel.send_observations(np.zeros((100, 4)), 30.0)
        assert time.monotonic() - start < SLACK_S
    finally:
        channel.close()
        listener.close()


def test_the_listener_takes_one_connection_and_refuses_the_next(tmp_path):
    listener = Listener(str(tmp_path))
    peer = start_peer(tmp_path, "connect-twice")
    channel = listener.accept(10.0)
    try:
        assert peer.stdout.readline().strip() in ("ConnectionRefusedError", "FileNotFoundError")
    finally:
        peer.kill()
        peer.wait(10)
        channel.close()
        listener.close()


def test_the_wait_for_a_connection_stops_when_the_job_ended_without_one(tmp_path):
    listener = Listener(str(tmp_path))
    start = time.monotonic()
    try:
        with pytest.raises(PolicyGone, match="without connecting to the referee"):
            listener.accept(30.0, ended=lambda: time.monotonic() - start > SHORT_S)
        assert time.monotonic() - start < SLACK_S
        with pytest.raises(PolicyTimeout, match="did not connect within"):
            listener.accept(30.0, until=time.monotonic() + SHORT_S)
    finally:
        listener.close()


def test_a_policy_with_minimal_builtins_may_use_what_numpy_imports_lazily():
    """``obs.clip`` makes numpy import one of its own modules through the policy's builtins: that must pass."""
    code = ("import numpy as np\nfrom evosearch.evaluate.referee import load_policy\n"
            "act = load_policy('import numpy as np\\ndef act(obs):\\n    return (obs.clip(-2, 2)[:, 2] > 0)"
            ".astype(np.int64)\\n')\nprint(act(np.ones((3, 4))).tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[1, 1, 1]", out.stderr[-2000:]
