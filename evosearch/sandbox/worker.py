"""The warm worker: imports torch once, then forks one child per job and reports its exit.

Run as ``python -m evosearch.sandbox.worker``. It reads one JSON request per line on stdin
and answers on stdout with two lines per job: ``{"id", "pid"}`` when the child starts and
``{"id", "status", "cpu_s", "peak_rss_mb"}`` (the raw wait status and the child's resource
use) when it ends. It never runs candidate code and
never runs a multi-threaded op, so its forks start clean; the host kills a job by killing the
child's process group, which the child leads.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys

MIB = 1024 * 1024


def _start_child(request: dict, out_fd: int, in_fd: int) -> None:
    """In the forked child: isolate, limit, run the job; never returns."""
    try:
        os.setsid()
        os.close(in_fd)
        os.close(out_fd)
        scratch = request["scratch"]
        fd = os.open(os.path.join(scratch, "output.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full output file fails writes, not the job
        limits = request["limits"]
        memory = int(limits["memory_mb"]) * MIB
        cpu = int(limits["cpu_s"])
        files = int(limits["file_mb"]) * MIB
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (files, files))
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["open_files"]), int(limits["open_files"])))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.chdir(scratch)
        from evosearch.sandbox import jobs

        jobs.run(request["job"], request["payload"], scratch)
    finally:
        os._exit(70)


def _wait_unless_orphaned(pid: int, in_fd: int) -> bool:
    """Block until the job exits (True) or the host closes our stdin by dying (False).

    The host writes nothing while a job runs, so stdin becoming readable means end of file.
    """
    try:
        watched = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): poll instead
        watched = None
    try:
        while True:
            fds = [in_fd] + ([watched] if watched is not None else [])
            ready, _, _ = select.select(fds, [], [], None if watched is not None else 0.2)
            if in_fd in ready:
                return False
            if watched is not None and watched in ready:
                return True
            if watched is None and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
    finally:
        if watched is not None:
            os.close(watched)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from evosearch.sandbox import jobs  # noqa: F401  - the warm import: torch, envpool, harness

    in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
    reader = os.fdopen(os.dup(in_fd), "r", encoding="utf-8")
    writer = os.fdopen(os.dup(out_fd), "w", encoding="utf-8", buffering=1)
    writer.write(json.dumps({"ready": os.getpid()}) + "\n")
    for line in reader:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _start_child(request, out_fd, in_fd)
        writer.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")
        if not _wait_unless_orphaned(pid, in_fd):
            _kill_group(pid)  # the host is gone (killed): take the job with us rather than leave it running
            os.waitpid(pid, 0)
            return
        _, status, usage = os.wait4(pid, 0)  # measured by us, not reported by the job
        writer.write(json.dumps({"id": request["id"], "status": status,
                                 "cpu_s": usage.ru_utime + usage.ru_stime,
                                 "peak_rss_mb": usage.ru_maxrss / 1024}) + "\n")


if __name__ == "__main__":
    main()
