"""The sandbox's own job catalogue: one job that tries, from inside, what a hostile program would.

``evosearch doctor`` runs it to show what a job can do to its host, and what the job's
companion (where a rule's code runs) can do to the job. Only harmless probes: signal 0 checks
permission without sending anything, and a file created outside the scratch directory is
removed at once.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from evosearch.sandbox import companion
from evosearch.sandbox.job import Job


@dataclass(frozen=True)
class SelfCheck(Job):
    catalogue: ClassVar[str] = __name__
    name: ClassVar[str] = "selfcheck"

    def payload(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class GpuCheck(Job):
    """Start CUDA on ``device`` inside a job, as a training job would (run with ``Limits(gpu=True)``)."""

    catalogue: ClassVar[str] = __name__
    name: ClassVar[str] = "gpucheck"
    device: str = "cuda"

    def payload(self) -> dict[str, Any]:
        return {"device": self.device}


def gpucheck(payload: dict, scratch: str) -> dict:
    from evosearch.sandbox.gpu import start_cuda

    return start_cuda(str(payload["device"]))


def _attempt(action: Callable[[], None]) -> str:
    """``allowed`` or ``blocked (<why>)`` for one thing a hostile program would try."""
    try:
        action()
    except OSError as err:
        return f"blocked ({err.strerror or type(err).__name__})"
    return "allowed"


def _outside_write() -> None:
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), f".evosearch-doctor-{os.getpid()}")
    with open(path, "w", encoding="utf-8"):
        pass
    os.unlink(path)


def _fork() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _companion_view(sock: socket.socket) -> None:
    """In the companion: what it can do to its job, sent back as one JSON line."""
    job = os.getppid()
    view = {
        "write a file": _attempt(lambda: open(f".evosearch-doctor-companion-{os.getpid()}", "w").close()),
        "fork a process": _attempt(_fork),
        "open a socket": _attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
        "signal its job": _attempt(lambda: os.kill(job, 0)),
        "open its job's memory": _attempt(lambda: os.close(os.open(f"/proc/{job}/mem", os.O_RDONLY))),
    }
    sock.sendall(json.dumps(view).encode() + b"\n")


def _companion_report() -> dict:
    sock, pid = companion.channel()
    data = b""
    while not data.endswith(b"\n") and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    os.waitpid(pid, 0)
    try:
        return json.loads(data)
    except ValueError:
        return {"error": "the companion sent no report"}


def selfcheck(payload: dict, scratch: str) -> dict:
    """What a job can do to its host, tried from inside one."""

    with open("/proc/self/status", encoding="ascii") as f:
        caps = dict(line.split(":\t", 1) for line in f if line.startswith("Cap")).get("CapEff", "?").strip()
    return {
        "uid": os.getuid(),
        "capabilities (CapEff)": caps,
        "write the evosearch package": _attempt(_outside_write),
        "fork a process": _attempt(_fork),
        "open an internet socket": _attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
        "signal the worker": _attempt(lambda: os.kill(os.getppid(), 0)),
        "open the worker's reply pipe": _attempt(lambda: open(f"/proc/{os.getppid()}/fd/1", "wb").close()),
        "environment variables": sorted(os.environ),
        "its companion (where a rule's code runs)": _companion_report(),
    }


@dataclass(frozen=True)
class _Handler:
    run: Callable[[dict, str], dict]
    companion: Callable[[socket.socket], None] | None = None

    def __call__(self, payload: dict, scratch: str) -> dict:
        return self.run(payload, scratch)


JOBS = {SelfCheck.name: _Handler(selfcheck, _companion_view), GpuCheck.name: _Handler(gpucheck)}
