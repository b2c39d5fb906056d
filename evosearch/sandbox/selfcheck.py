"""The sandbox's own job catalogue: one job that tries, from inside, what a hostile program would.

``evosearch doctor`` runs it to show what a job can do to its host. Only harmless probes:
signal 0 checks permission without sending anything, and a file created outside the scratch
directory is removed at once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from evosearch.sandbox.job import Job


@dataclass(frozen=True)
class SelfCheck(Job):
    catalogue: ClassVar[str] = __name__
    name: ClassVar[str] = "selfcheck"

    def payload(self) -> dict[str, Any]:
        return {}


def _attempt(action: Callable[[], None]) -> str:
    """``allowed`` or ``blocked (<why>)`` for one thing a hostile program would try."""
    try:
        action()
    except OSError as err:
        return f"blocked ({err.strerror or type(err).__name__})"
    return "allowed"


def selfcheck(payload: dict, scratch: str) -> dict:
    """What a job can do to its host, tried from inside one."""

    def outside_write() -> None:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            f".evosearch-doctor-{os.getpid()}")
        with open(path, "w", encoding="utf-8"):
            pass
        os.unlink(path)

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    with open("/proc/self/status", encoding="ascii") as f:
        caps = dict(line.split(":\t", 1) for line in f if line.startswith("Cap")).get("CapEff", "?").strip()
    return {
        "uid": os.getuid(),
        "capabilities (CapEff)": caps,
        "write the evosearch package": _attempt(outside_write),
        "fork a process": _attempt(fork),
        "open an internet socket": _attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
        "signal the worker": _attempt(lambda: os.kill(os.getppid(), 0)),
        "open the worker's reply pipe": _attempt(lambda: open(f"/proc/{os.getppid()}/fd/1", "wb").close()),
        "environment variables": sorted(os.environ),
    }


JOBS = {SelfCheck.name: selfcheck}
