"""Run one job in its own process, forked from a warm worker that has torch imported.

Why a warm worker: importing torch costs ~2 s, a fork from a process that already has it
~10 ms, and the worker never runs candidate code or a multi-threaded op, so its children
start clean and single-threaded. How a job is confined depends on the sandbox mode
(:mod:`evosearch.sandbox.modes`; the worker does the confining, :mod:`.worker`). This side
keeps a pool of workers, one per concurrent job, replaces any that fails or has served
``recycle_after`` jobs, and trusts nothing a job wrote: it parses the result file
defensively and takes the exit status and resource use from the worker, which measured them.

Nothing of one job may reach the next on the same worker (issue 15): the worker takes away
what a job left (processes, private files, IPC objects), and the host checks the result
before it hands the worker another job. Where the slot has a cgroup, the processes in it must
be the worker's own again and its shared memory (what outlives a process: tmpfs files,
System V segments) back near what it was when the worker started; a worker that cannot get
there is retired, never reused.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import queue
import secrets
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from evosearch.sandbox import cgroups, launch, modes
from evosearch.sandbox.cleanup import remove_tree
from evosearch.sandbox.job import Job

RESULT_FILE = "result.json"
OUTPUT_FILE = "output.log"
TAIL_BYTES = 4000
WORKER_PREFIX = "evosearch_worker-"  # a worker's scratch root and cgroup: evosearch_worker-<host pid>-<n>-...
MAX_RESULT_BYTES = 64 * 1024 * 1024
PIDS_PER_SLOT = 256  # processes and threads of a worker and its job together (EnvPool and torch start threads)

_pools: dict[str, queue.SimpleQueue] = {}  # warm workers by job catalogue
_started = False
_pool_lock = threading.Lock()
_worker_numbers = itertools.count(1)
_busy: set[Worker] = set()  # workers running a job now, for shutdown()
_recycle_after = 200  # jobs per worker before it is replaced by a fresh one
WORKER_GRACE_S = 30.0  # past a job's wall limit, how long the host waits for the worker to report
#: Shared memory a slot may still hold after a job, over its start: weights a job left in a kept scratch
#: directory on a tmpfs count here until the evaluation removes them.
LEFTOVER_SHMEM_MB = 64
#: The kernel frees a dead job's IPC namespace (its segments) later, from a work queue after an RCU grace
#: period: tens of milliseconds, more on a busy machine. How long the host waits for the slot to be clean.
SETTLE_S = 5.0
SETTLE_STEP_S = 0.02
STOP_GRACE_S = 2.0  # how long a worker asked to leave (end of its request pipe) gets before it is killed


@dataclass(frozen=True)
class Limits:
    """Per-job resource limits."""

    wall_s: float = 600.0
    memory_mb: int = 4096  # address space; torch alone needs ~650 MiB of it
    cpu_s: int | None = None  # defaults to twice the wall limit
    file_mb: int = 64
    open_files: int = 256
    limit_address_space: bool = True  # the memory cgroup bounds a job without it (see ``gpu``)
    # The job starts CUDA: no address-space limit (the driver maps tens of GiB it never touches),
    # room for the driver's threads, and the groups that open the GPU's device nodes.
    gpu: bool = False

    def for_worker(self) -> dict:
        cpu = self.cpu_s or int(self.wall_s * 2) + 5
        return {"memory_mb": self.memory_mb, "cpu_s": cpu, "file_mb": self.file_mb, "open_files": self.open_files,
                "limit_address_space": self.limit_address_space and not self.gpu, "gpu": self.gpu}


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
    """One warm worker process (inside bubblewrap when that is the mode); serves one job at a time.

    It owns a scratch root that only its jobs see, and a cgroup slot where cgroups are writable.
    Every reply must carry the id of the request it answers; a worker that is out of step, has
    died or stopped answering is killed with everything in it and never reused.
    """

    def __init__(self, mode: modes.Mode, catalogue: str) -> None:
        self.mode = mode
        self.catalogue = catalogue
        self.job_pid: int | None = None  # the job's pid in the host's namespace (not under bubblewrap)
        self.jobs_done = 0
        self._buffer = b""
        number = next(_worker_numbers)
        self.root = tempfile.mkdtemp(prefix=f"{WORKER_PREFIX}{os.getpid()}-{number}-", dir=scratch_root())
        os.chmod(self.root, 0o711)  # a job with a uid of its own must pass through to its scratch
        self.group = None
        if mode.cgroups.any:
            try:
                self.group = cgroups.SlotGroup(mode.cgroups, os.path.basename(self.root))
            except OSError:
                self.group = None  # a cgroup we could not create: the other layers still hold
        self.job_uid = _job_uid()
        argv, env = launch.worker_command(mode, self.root, self.job_uid,
                                          self.group.procs_files if self.group else [], catalogue)
        # The worker's own errors (and bubblewrap's) go to a log beside its jobs, for the message below.
        self.log_path = os.path.join(self.root, "worker.log")
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, bufsize=0, cwd=self.root,
            # Its own session: a terminal's Ctrl-C goes to the host's whole process group, and the
            # host decides what an interrupt means (finish the running jobs, or abandon them).
            start_new_session=True,
        )
        os.close(log)
        ready = self._read(120.0)
        if not ready or "ready" not in ready:
            said = _tail(Path(self.log_path)).strip().splitlines()[-5:]
            self.close()
            raise RuntimeError(f"the sandbox worker did not start in mode {mode.name}: "
                               + (" | ".join(said) or "no message (is evosearch importable?)")
                               + "; `evosearch doctor` checks the sandbox")
        # What the slot holds with no job in it: after every job it must hold this again.
        self.baseline_pids = self.group.pids() if self.group else set()
        self.baseline_shmem_mb = self.group.shmem_mb() if self.group else 0.0
        self.left_behind = ""  # what the last job left that could not be taken away: the worker is then retired

    def _read(self, timeout: float) -> dict | None:
        """One reply line, or None on timeout, on a line that is not JSON, or if the worker died.

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
        try:
            reply = json.loads(line)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def alive(self) -> bool:
        return self.process.poll() is None

    def new_scratch(self, job: str) -> str:
        """A fresh scratch directory for one job, writable by the job's uid alone."""
        scratch = tempfile.mkdtemp(prefix=f"evosearch-{job}-{os.getpid()}-", dir=self.root)
        self.hand_over(scratch)
        return scratch

    def hand_over(self, path: str) -> None:
        """Make ``path`` the job's, where jobs run as a uid of their own (both strong modes, as root)."""
        if self.mode.name != "rlimits" and launch.drops_uid():
            os.chown(path, self.job_uid, self.job_uid)

    def inside(self, path: str) -> str:
        """A path under our scratch root as the worker sees it (bubblewrap binds the root elsewhere)."""
        return launch.inside(self.mode, self.root, path)

    def oom_kills(self) -> int:
        return self.group.oom_kills() if self.group else 0

    def run(self, request: dict, wall_s: float, during: Callable[[], bool] | None = None) -> dict | None:
        """Send a job; return the worker's end report, or None if the worker failed us (it is then closed).

        ``during`` runs once the job has started (a referee talking to it); when it returns True
        the worker is told to kill the job now rather than at its wall-clock limit.
        """
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            self.close()
            return None
        started = self._read(30.0)
        if not started or started.get("id") != request["id"]:
            self.close()  # out of step with us, or dead: never reuse it
            return None
        if self.mode.name != "bubblewrap":  # under bubblewrap the pid is the sandbox's, not ours
            self.job_pid = int(started["pid"])
        if during is not None:
            try:
                cancel = during()
            except BaseException:  # the host's side failed: stop the job, keep the worker in step, then say why
                self._cancel(request["id"])
                if self._read(wall_s + WORKER_GRACE_S) is None:
                    self.close()
                raise
            if cancel:
                self._cancel(request["id"])
        # The worker kills the job at wall_s itself; this later deadline is for a worker that cannot.
        finished = self._read(wall_s + WORKER_GRACE_S)
        if not finished or finished.get("id") != request["id"] or "status" not in finished:
            self.close()
            return None
        self.jobs_done += 1
        self.left_behind = self._left_behind(finished)
        return finished

    def _left_behind(self, report: dict) -> str:
        """What the job that just ended left in the slot ("" when nothing): a process, or shared memory.

        The worker has already swept; this is the host's own check, from the slot's cgroup, so it
        holds whatever the job did that the worker's cleanup does not know about.
        """
        if report.get("clean") is False:
            return "the worker could not remove everything its job left"
        if self.group is None:
            return ""
        deadline = time.monotonic() + SETTLE_S
        while True:
            stray = self.group.pids() - self.baseline_pids
            held = self.group.shmem_mb() - self.baseline_shmem_mb
            if not stray and held <= LEFTOVER_SHMEM_MB:
                return ""
            if time.monotonic() >= deadline:
                if stray:
                    return f"processes of its job still running: {sorted(stray)}"
                return f"{held:.0f} MiB of shared memory still charged to its slot"
            time.sleep(SETTLE_STEP_S)

    def _cancel(self, request_id: str) -> None:
        """Ask the worker to kill the running job now (it then reports the job as cancelled)."""
        try:
            self.process.stdin.write((json.dumps({"cancel": request_id}) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            pass  # the worker is gone: the next read says so

    def close(self) -> None:
        """Stop the worker and everything it started, then remove its scratch root and cgroup.

        In an order that lets every process be reaped by its own parent, so that none lingers as a
        zombie under the host's PID 1 (``[bwrap] <defunct>``): the worker is first asked to leave
        (the end of its request pipe: it kills a running job and exits); one that does not is
        killed from the inside out, its jobs and itself before the bwrap above it.
        """
        _kill_group(self.job_pid)
        if not self._leave():
            self._kill_inside()
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.kill()
                self.process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        if self.group is not None:
            self.group.remove()
        remove_tree(self.root)

    def _leave(self) -> bool:
        """Ask the worker to leave by closing its request pipe; True once it (and bwrap above it) has exited."""
        if self.process.poll() is not None:
            return not (self.group and self.group.pids())  # dead, but maybe not all of its slot
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            return False
        return not (self.group and self.group.pids())

    def _kill_inside(self) -> None:
        """SIGKILL everything below the process we started, and let its parent reap it before that one goes.

        Under bubblewrap the worker is its namespace's init: its death takes its jobs along, and
        bwrap reaps it and exits. Outside bubblewrap the worker is the process we started, and its
        jobs go first.
        """
        inside = (self.group.pids() if self.group else _descendants(self.process.pid)) - {self.process.pid}
        for pid in inside:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.mode.name == "bubblewrap":
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc (empty where there is no /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as f:
                    children = {int(c) for c in f.read().split()} - found
            except OSError:
                continue
            found |= children
            todo += children
    return found


def scratch_root() -> str:
    """Where workers keep their scratch roots: ``EVOSEARCH_SCRATCH``, else the system temp directory."""
    root = os.environ.get("EVOSEARCH_SCRATCH") or tempfile.gettempdir()
    os.makedirs(root, exist_ok=True)
    return root


def _job_uid() -> int:
    """An unprivileged uid for one worker's jobs (namespaces mode), not shared with other workers.

    Drawn from a range no distribution hands out (above the 32-bit nobody's neighbours), so two
    workers, or two campaigns, never share one: a shared uid could signal the other's jobs.
    """
    return secrets.randbelow(1 << 30) + (1 << 30)


def configure(mode: str | None = None, *, recycle_after: int | None = None) -> modes.Mode:
    """Choose the sandbox mode (``auto``, ``bubblewrap``, ``namespaces``, ``rlimits``) for later jobs.

    Raises :class:`~evosearch.sandbox.modes.SandboxUnavailable` when that mode cannot run here.
    Running workers are stopped; new ones start in the new mode.
    """
    global _recycle_after
    chosen = modes.set_requested(mode)
    if recycle_after is not None:
        _recycle_after = max(1, int(recycle_after))
    shutdown()
    return chosen


def requested_for(mode: str | None) -> str:
    """What ``mode`` asks for: ``auto`` (a config's default) yields to ``EVOSEARCH_SANDBOX``.

    The variable is how a user overrides the mode for one command.
    """
    if mode in (None, "auto"):
        return os.environ.get("EVOSEARCH_SANDBOX") or "auto"
    return mode


def ensure(mode: str | None) -> modes.Mode:
    """The mode in force, after switching to ``mode`` if one is asked for and differs (see :func:`configure`)."""
    mode = requested_for(mode)
    if mode == modes.requested_mode():
        return modes.current()
    return configure(mode)


def current_mode() -> modes.Mode:
    """The sandbox mode jobs run in (detected on first use)."""
    return modes.current()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> int:
    """Remove scratch roots and cgroups that hosts killed with SIGKILL left behind; return how many.

    Every name carries the pid of the host that made it (``evosearch_worker-<pid>-...``,
    ``evosearch-<job>-<pid>-...``): when that process is gone, so is its use for them.
    """
    removed = 0
    root = Path(scratch_root())
    mode = modes.current()
    groups = [where[1] for where in (mode.cgroups.memory, mode.cgroups.pids) if where]
    places = [root, *groups, *([mode.cgroups.kill] if mode.cgroups.kill else [])]
    for place in places:
        try:
            entries = list(place.iterdir())
        except OSError:
            continue
        for entry in entries:
            parts = entry.name.split("-")
            if not (entry.name.startswith((WORKER_PREFIX, "evosearch-")) and len(parts) > 2):
                continue
            pid = parts[1] if entry.name.startswith(WORKER_PREFIX) else parts[2]
            if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
                continue
            if place == root:
                remove_tree(entry)
            else:
                try:
                    entry.rmdir()
                except OSError:
                    continue
            removed += 1
    return removed


def _acquire(catalogue: str) -> Worker:
    global _started
    mode = modes.current()
    with _pool_lock:
        if not _started:
            _started = True
            sweep_stale()
            atexit.register(shutdown)
        pool = _pools.setdefault(catalogue, queue.SimpleQueue())
    worker = None
    while worker is None:
        try:
            candidate = pool.get_nowait()
        except queue.Empty:
            worker = Worker(mode, catalogue)
            break
        if candidate.alive() and candidate.mode is mode:
            worker = candidate
        else:
            candidate.close()
    with _pool_lock:
        _busy.add(worker)
    return worker


def _release(worker: Worker) -> None:
    with _pool_lock:
        _busy.discard(worker)
        worker.job_pid = None
    pool = _pools.get(worker.catalogue)
    if worker.alive() and pool is not None and worker.jobs_done < _recycle_after and not worker.left_behind:
        pool.put(worker)
    else:  # dead, holding what its last job left, or due for a fresh start (a long-lived process accumulates state)
        worker.close()


def _open_regular(path: str | Path, max_bytes: int) -> int:
    """A descriptor for a plain file of at most ``max_bytes`` that a job wrote, or OSError.

    Everything in a scratch directory was written by a candidate: a symlink to ``/dev/zero`` or
    to a host file, or a FIFO, would make the host read forever, block, or read what it should
    not. So: no symlinks, no blocking, regular files only, bounded size.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        raise OSError(f"{path} is not a plain file of at most {max_bytes} bytes")
    return fd


def _tail(path: Path) -> str:
    try:
        fd = _open_regular(path, 1 << 40)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        f.seek(max(0, size - TAIL_BYTES))
        return f.read(TAIL_BYTES).decode("utf-8", errors="replace")


def _read_json(path: Path) -> dict:
    try:
        with os.fdopen(_open_regular(path, MAX_RESULT_BYTES), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, RecursionError):  # a candidate may write the file: nesting too deep for json
        return {}


class JobInputError(OSError):
    """An input file for a job is missing or is not a plain file (its writer was a candidate)."""


def copy_plain_file(source: str | Path, target: str | Path, max_bytes: int) -> None:
    """Copy a file a job wrote into another job's scratch, refusing anything but a plain file."""
    with os.fdopen(_open_regular(source, max_bytes), "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


class Session(Protocol):
    """Host-side work that talks to a running job (the policy referee)."""

    def prepare(self, scratch: str) -> list[str]:
        """Set up in the job's scratch directory before it starts; returns paths the job must own."""

    def run(self) -> bool:
        """Talk to the started job; True asks for it to be killed now."""


def run_job(job: Job, limits: Limits, *, keep_scratch: bool = False,
            inputs: dict[str, str] | None = None, session: Session | None = None) -> JobOutcome:
    """Run ``job`` (a handler of its catalogue, with its payload) under ``limits``.

    ``inputs`` maps file names to host paths copied into the job's scratch directory first (the
    job sees them in its working directory): how a scoring job gets the weights a training job
    wrote in another worker's scratch. The scratch directory is removed afterwards unless
    ``keep_scratch`` (the caller then owns it). Safe to call from several threads: each call
    takes its own warm worker.
    """
    worker = _acquire(job.catalogue)
    scratch = worker.new_scratch(job.name)
    request = {"id": secrets.token_hex(16), "job": job.name, "payload": job.payload(),
               "scratch": worker.inside(scratch), "limits": limits.for_worker(), "wall_s": limits.wall_s}
    start = time.monotonic()
    try:
        for name, source in (inputs or {}).items():
            target = os.path.join(scratch, os.path.basename(name))
            try:
                copy_plain_file(source, target, limits.file_mb * 1024 * 1024)
            except OSError as err:
                raise JobInputError(f"input {name}: {err}") from err
            worker.hand_over(target)
        for path in session.prepare(scratch) if session is not None else ():
            worker.hand_over(path)
        if worker.group is not None:  # this job's memory limit, plus the worker it forks from
            worker.group.set_limits(limits.memory_mb, PIDS_PER_SLOT)
        oom_before = worker.oom_kills()
        report = worker.run(request, limits.wall_s, session.run if session is not None else None)
        oom_killed = report is not None and worker.oom_kills() > oom_before
        data = _read_json(Path(scratch) / RESULT_FILE)
        tail = _tail(Path(scratch) / OUTPUT_FILE)
        if keep_scratch:  # out of the worker's root, which goes when the worker does
            kept = tempfile.mkdtemp(prefix=f"evosearch-{job.name}-{os.getpid()}-", dir=scratch_root())
            os.rename(scratch, kept)  # onto the empty directory: replaces it, atomically
            scratch = kept
        else:
            remove_tree(scratch)
    except BaseException:
        remove_tree(scratch)
        raise
    finally:
        _release(worker)
    wall = time.monotonic() - start
    exit_code = None
    if report is not None:
        status = int(report["status"])
        exit_code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    outcome = JobOutcome(status="ok", output_tail=tail, wall_s=wall, exit_code=exit_code, scratch=scratch)
    if report is not None:
        outcome.cpu_s, outcome.peak_rss_mb = float(report["cpu_s"]), float(report["peak_rss_mb"])
    if report is not None and report.get("cancelled"):
        outcome.status = "cancelled"
        outcome.error = {"type": "Cancelled", "message": "stopped by the host"}
    elif report is not None and report.get("timed_out"):
        outcome.status = "timeout"
        outcome.error = {"type": "Timeout", "message": f"job ran past its {limits.wall_s:g} s wall-clock limit"}
    elif report is None:
        outcome.status = "crashed"
        outcome.error = {"type": "WorkerLost", "message": "the sandbox worker died or stopped answering during the job"}
    elif not report.get("confined"):
        outcome.status = "crashed"
        outcome.error = {"type": "SandboxSetup", "message": "the sandbox could not confine the job: "
                         + (outcome.output_tail.strip().splitlines() or ["no message"])[-1]}
    elif oom_killed and exit_code == -signal.SIGKILL:
        outcome.status = "killed"
        outcome.error = {"type": "MemoryError", "message": "killed by the kernel: the job's cgroup ran out of memory "
                         f"({limits.memory_mb} MiB)"}
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
    return outcome


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
        worker.close()  # its job's process group first
    with _pool_lock:
        pools = list(_pools.values())
    for pool in pools:
        while True:
            try:
                pool.get_nowait().close()
            except queue.Empty:
                break
