"""Run one job in its own process, forked from a warm worker that has torch imported.

Why a warm worker: importing torch costs ~2 s, a fork from a process that already has it
~10 ms, and the worker never runs candidate code or a multi-threaded op, so its children
start clean and single-threaded. Each job calls ``setsid`` first (its own process group, so the
wall-clock kill takes every process it started), sets rlimits, redirects its output to a
bounded file in a scratch directory and writes its result as JSON there. The parent trusts
nothing but the exit status and files it parses defensively.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RESULT_FILE = "result.json"
OUTPUT_FILE = "output.log"
TAIL_BYTES = 4000

_pool: queue.SimpleQueue | None = None
_pool_lock = threading.Lock()
_job_ids = itertools.count(1)
_busy: set[Worker] = set()  # workers running a job now, for shutdown()


@dataclass(frozen=True)
class Limits:
    """Per-job resource limits."""

    wall_s: float = 600.0
    memory_mb: int = 4096  # address space; torch alone needs ~650 MiB of it
    cpu_s: int | None = None  # defaults to twice the wall limit
    file_mb: int = 64
    open_files: int = 256

    def for_worker(self) -> dict:
        cpu = self.cpu_s or int(self.wall_s * 2) + 5
        return {"memory_mb": self.memory_mb, "cpu_s": cpu, "file_mb": self.file_mb, "open_files": self.open_files}


@dataclass
class JobOutcome:
    """How a job ended. ``status`` is ``ok``, ``error`` (the job raised), ``timeout``,
    ``killed`` (a signal we did not send) or ``crashed`` (exited without a result)."""

    status: str
    result: dict = field(default_factory=dict)
    error: dict = field(default_factory=dict)
    output_tail: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    exit_code: int | None = None
    scratch: str = ""


class Worker:
    """One warm worker process; serves one job at a time."""

    def __init__(self) -> None:
        self.job_pid: int | None = None
        self._buffer = b""
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "evosearch.sandbox.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0,
            # Its own session: a terminal's Ctrl-C goes to the host's whole process group, and the
            # host decides what an interrupt means (finish the running jobs, or abandon them).
            start_new_session=True,
        )
        ready = self._read(120.0)
        if not ready or "ready" not in ready:
            self.close()
            raise RuntimeError("the sandbox worker did not start (is evosearch importable?)")

    def _read(self, timeout: float) -> dict | None:
        """One reply line, or None on timeout or if the worker died.

        Reads the raw pipe into our own buffer: ``select`` on a buffered stream would miss a
        second reply already sitting in Python's buffer (a fast job's "started" and "finished"
        often arrive in one read) and wait for the timeout instead.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, request: dict, wall_s: float) -> tuple[dict | None, bool]:
        """Send a job; return ``(end report, timed_out)``. The report is None if the worker died."""
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        started = self._read(30.0)
        if not started or started.get("id") != request["id"]:
            self.close()  # out of step with us: never reuse it
            return None, False
        pid = self.job_pid = int(started["pid"])
        finished = self._read(wall_s)
        timed_out = finished is None and self.alive()
        _kill_group(pid)  # the job and anything it left behind
        if finished is None:
            _kill(pid)  # in case it never got as far as leading its own group
            finished = self._read(10.0)
        if not finished or finished.get("id") != request["id"]:
            self.close()
            return None, timed_out
        return finished, timed_out

    def close(self) -> None:
        try:
            self.process.kill()
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _acquire() -> Worker:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = queue.SimpleQueue()
    try:
        worker = _pool.get_nowait()
        if not worker.alive():
            worker = Worker()
    except queue.Empty:
        worker = Worker()
    with _pool_lock:
        _busy.add(worker)
    return worker


def _release(worker: Worker) -> None:
    with _pool_lock:
        _busy.discard(worker)
        worker.job_pid = None
    if worker.alive() and _pool is not None:
        _pool.put(worker)
    else:
        worker.close()


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def run_job(job: str, payload: dict, limits: Limits, keep_scratch: bool = False) -> JobOutcome:
    """Run ``job`` (a name in ``evosearch.sandbox.jobs``) with ``payload`` under ``limits``.

    The scratch directory is removed afterwards unless ``keep_scratch`` (the caller then owns
    it, e.g. to hand the trained weights to the scorer). Safe to call from several threads:
    each call takes its own warm worker.
    """
    root = os.environ.get("EVOSEARCH_SCRATCH") or None  # default: the system temp directory
    if root:
        os.makedirs(root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f"evosearch-{job}-", dir=root)
    request = {"id": next(_job_ids), "job": job, "payload": payload, "scratch": scratch,
               "limits": limits.for_worker()}
    worker = _acquire()
    start = time.monotonic()
    try:
        report, timed_out = worker.run(request, limits.wall_s)
    finally:
        _release(worker)
    wall = time.monotonic() - start
    data = _read_json(Path(scratch) / RESULT_FILE)
    exit_code = None
    if report is not None:
        status = int(report["status"])
        exit_code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    outcome = JobOutcome(status="ok", output_tail=_tail(Path(scratch) / OUTPUT_FILE), wall_s=wall,
                         exit_code=exit_code, scratch=scratch)
    if report is not None:
        outcome.cpu_s, outcome.peak_rss_mb = float(report["cpu_s"]), float(report["peak_rss_mb"])
    if timed_out:
        outcome.status = "timeout"
        outcome.error = {"type": "Timeout", "message": f"job ran past its {limits.wall_s:g} s wall-clock limit"}
    elif report is None:
        outcome.status = "crashed"
        outcome.error = {"type": "WorkerLost", "message": "the sandbox worker died during the job"}
    elif data.get("status") == "ok" and exit_code == 0:
        outcome.result = data.get("result", {})
    elif data.get("status") == "error":
        outcome.status = "error"
        outcome.error = data.get("error", {})
    elif exit_code is not None and exit_code < 0:
        outcome.status = "killed"
        name = signal.Signals(-exit_code).name
        hint = " (CPU-time limit reached)" if name == "SIGXCPU" else ""
        outcome.error = {"type": "Signal", "message": f"job killed by {name}{hint}"}
    else:
        outcome.status = "crashed"
        outcome.error = {"type": "Crash", "message": f"job exited with code {exit_code} and no result"}
    if not keep_scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return outcome


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(pid: int | None) -> None:
    """SIGKILL the job's process group: the job and everything it started."""
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def shutdown() -> None:
    """Kill every running job (with its process group) and every warm worker.

    For a host that abandons its work (a second Ctrl-C): the threads waiting on those jobs
    return at once with a failed job, which the caller then discards.
    """
    with _pool_lock:
        busy = list(_busy)
    for worker in busy:
        _kill_group(worker.job_pid)
        worker.close()
    while _pool is not None:
        try:
            _pool.get_nowait().close()
        except queue.Empty:
            break
