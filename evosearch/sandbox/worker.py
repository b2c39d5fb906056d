"""The warm worker: imports torch once, then forks one child per job and reports how it ended.

Run as ``python -m evosearch.sandbox.worker --mode MODE``. It reads one JSON request per line
on stdin and answers on stdout with two lines per job, each carrying the request's id:
``{"id", "pid"}`` when the child starts and ``{"id", "status", "confined", "clean", "timed_out",
"cancelled", "cpu_s", "peak_rss_mb"}`` (the raw wait status and the child's resource use,
measured here, and whether what it left could all be taken away) when it ends. The worker
never runs candidate code and never runs a multi-threaded op, so its forks start clean. It
enforces each job's wall-clock limit itself, because under bubblewrap the job's pid means
nothing to the host; the host keeps a later deadline of its own.

A job child, in order: leads a new session; closes every descriptor it inherited (the
worker's request and reply pipes included) and writes its output to a bounded file; in
``namespaces`` mode enters its namespaces and drops to an unprivileged uid, in the other modes
enters an IPC namespace of its own where the kernel allows one; sets rlimits;
forks the job's companion if its handler has one (:mod:`evosearch.sandbox.companion`); loads
the seccomp filter; runs the job.

Nothing of one job may reach the next (issue 15): after each job the worker kills and reaps
whatever the job left running, empties its sandbox's private ``/tmp``, ``/dev/shm`` and
``/var/tmp`` (bubblewrap), and removes System V objects a job left in the worker's IPC
namespace when the job could not have one of its own. It reports ``clean`` false when any
of that failed, and the host then retires the worker rather than give it another job.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import importlib
import json
import os
import re
import resource
import select
import signal
import sys
import time
import traceback

MIB = 1024 * 1024
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
NPROC_LIMIT = 64  # threads count: EnvPool and torch start a few; a fork bomb is stopped by seccomp first
#: What the job writes to its setup pipe once confined: with an IPC namespace of its own, or sharing the worker's.
SETUP_OWN_IPC, SETUP_SHARED_IPC = b"1", b"2"
PRIVATE_DIRS = ("/tmp", "/dev/shm", "/var/tmp")  # a bubblewrap sandbox's own tmpfs, emptied after every job
SYSV_KINDS = ("shm", "sem", "msg")  # /proc/sysvipc/<kind>: the objects of the reader's IPC namespace
IPC_RMID = 0

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - no libc to load (not a POSIX system)
    _libc = None


def _prctl(option: int, value: int) -> bool:
    return bool(_libc is not None and sys.platform.startswith("linux") and _libc.prctl(option, value, 0, 0, 0) == 0)


def _start_child(request: dict, options: argparse.Namespace, worker_pid: int, setup_fd: int) -> None:
    """In the forked child: isolate, limit, run the job; never returns.

    ``setup_fd`` is closed by the first byte written to it: the worker learns that confinement
    is complete before any job code ran, so a failed setup is a sandbox failure, never blamed on
    the candidate (who cannot fake it: the descriptor is gone when its code runs).
    """
    try:
        _confine(request, options, worker_pid, setup_fd)
    except BaseException:  # noqa: BLE001 - report how the sandbox failed, in the job's own output
        traceback.print_exc()
        os._exit(71)
    try:
        from evosearch.sandbox import jobrun

        handler = sys.modules[options.catalogue].JOBS[request["job"]]
        jobrun.run(handler, request["payload"], request["scratch"], getattr(handler, "candidate_faults", None))
    finally:
        os._exit(70)


def _confine(request: dict, options: argparse.Namespace, worker_pid: int, setup_fd: int) -> None:
    os.setsid()
    limits = request["limits"]
    gpu_groups: list[int] = []
    threads = NPROC_LIMIT
    if limits.get("gpu"):  # the groups that open the GPU's device nodes (if only a group may); the driver's threads
        from evosearch.sandbox.gpu import GPU_NPROC_LIMIT, device_groups

        gpu_groups, threads = device_groups(), GPU_NPROC_LIMIT
    if options.drop_uid:  # inside bubblewrap already: only the uid is left to change (this clears every capability)
        from evosearch.sandbox import namespaces

        namespaces.become(options.uid, gpu_groups)
    scratch = request["scratch"]
    fd = os.open(os.path.join(scratch, "output.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    keep = setup_fd if setup_fd > 2 else os.dup2(setup_fd, 3)
    os.closerange(3, keep)  # every inherited descriptor, the worker's pipes above all
    os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full output file fails writes, not the job
    if options.mode == "namespaces":
        from evosearch.sandbox import namespaces

        # an IPC namespace included
        namespaces.isolate(scratch, options.uid, options.tmpfs_mb, options.visible, gpu_groups)
    own_ipc = options.mode == "namespaces" or (options.private_ipc and _enter_private_ipc())
    if not _prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and sys.platform.startswith("linux"):
        raise OSError("prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != worker_pid:  # the worker died before we could tie ourselves to it
        raise OSError("the worker is gone")
    # rlimits mode has no /tmp of its own: honest temporary files go to the scratch directory, removed after the job.
    os.environ.update(HOME=scratch, TMPDIR=scratch if options.mode == "rlimits" else "/tmp")
    memory = int(limits["memory_mb"]) * MIB
    cpu = int(limits["cpu_s"])
    files = int(limits["file_mb"]) * MIB
    if limits.get("limit_address_space", True):
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (files, files))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["open_files"]), int(limits["open_files"])))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No POSIX message queues: where the IPC namespace is shared, one would outlive the job (none needs them).
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    if options.mode == "namespaces" or options.drop_uid:  # counted per uid, and the uid is this job's alone
        resource.setrlimit(resource.RLIMIT_NPROC, (threads, threads))
    serve = getattr(sys.modules[options.catalogue].JOBS.get(request["job"]), "companion", None)
    if serve is not None:  # candidate code goes to its own process, forked with every limit above in force
        from evosearch.sandbox import companion

        companion.start(serve, seccomp=options.seccomp)
    if options.seccomp:
        from evosearch.sandbox import seccomp_filter

        seccomp_filter.install()
    os.chdir(scratch)
    os.write(keep, SETUP_OWN_IPC if own_ipc else SETUP_SHARED_IPC)
    os.close(keep)


def _enter_private_ipc() -> bool:
    """Give the job an IPC namespace of its own; False (and a line in its output) where the kernel refuses.

    Not fatal: in bubblewrap mode the worker then empties its own IPC namespace after the job,
    and in rlimits mode the namespace is the host's, as ``evosearch doctor`` says.
    """
    from evosearch.sandbox import namespaces

    try:
        namespaces.private_ipc()
    except OSError as err:
        print(f"evosearch sandbox: no IPC namespace of its own for this job ({err})", file=sys.stderr)
        return False
    return True


def _wait(pid: int, in_fd: int, deadline: float) -> str:
    """Block until the job exits (``exited``), its time is up (``timeout``), the host cancels it
    (``cancelled``) or the host is gone (``orphaned``).

    While a job runs the host writes only a cancel line; end of file means the host is gone.
    """
    try:
        watched = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): poll instead
        watched = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            fds = [in_fd] + ([watched] if watched is not None else [])
            ready, _, _ = select.select(fds, [], [], remaining if watched is not None else min(remaining, 0.05))
            if in_fd in ready:
                return "cancelled" if os.read(in_fd, 4096) else "orphaned"
            if watched is not None and watched in ready:
                return "exited"
            if watched is None and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return "exited"
    finally:
        if watched is not None:
            os.close(watched)


def _setup_done(fd: int) -> tuple[bool, bool]:
    """(whether the child reported its confinement complete, whether it had an IPC namespace of its own)."""
    try:
        said = os.read(fd, 1)
    except OSError:
        said = b""
    finally:
        os.close(fd)
    return said in (SETUP_OWN_IPC, SETUP_SHARED_IPC), said == SETUP_OWN_IPC


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the group; the job itself if it never got to lead one
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _children() -> list[int]:
    """Our children still running or unreaped: a job's orphans are reparented to us (subreaper)."""
    found = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as f:
                found += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return found


def _sweep() -> bool:
    """Kill and reap whatever the job left behind, so the next job starts alone; True when nothing is left."""
    for _ in range(100):
        left = _children()
        if not left:
            break
        for pid in left:
            _kill_group(pid)
        time.sleep(0.005)
        _reap()
    _reap()
    return not _children()


def _sysv_objects() -> list[tuple[str, int]]:
    """(kind, id) of every System V object in our IPC namespace."""
    found = []
    for kind in SYSV_KINDS:
        try:
            with open(f"/proc/sysvipc/{kind}", encoding="ascii") as f:
                rows = f.read().splitlines()[1:]  # a header line first
        except OSError:
            continue
        found += [(kind, int(row.split()[1])) for row in rows if len(row.split()) > 1]
    return found


def _remove_sysv(owner: int | None) -> bool:
    """Remove every System V object in the worker's IPC namespace (nobody but its jobs lives there).

    Only the owner may remove an object without CAP_SYS_ADMIN, which the worker does not have:
    where jobs run as their own uid (``owner``), the worker takes that uid as its effective uid
    for the removal and back (its saved uid keeps the way back). True when none is left.
    """
    objects = _sysv_objects()
    if not objects:
        return True
    if owner is not None:
        os.setresuid(-1, owner, -1)
    try:
        for kind, ident in objects:
            if kind == "sem":
                _libc.semctl(ident, 0, IPC_RMID)
            else:
                getattr(_libc, f"{kind}ctl")(ident, IPC_RMID, None)
    finally:
        if owner is not None:
            os.setresuid(-1, 0, -1)
    return not _sysv_objects()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _mount_points(under: tuple[str, ...]) -> set[str]:
    """The mount points below ``under``: what bubblewrap bound into the private directories (the scratch
    root, a Python installation in a clone under /tmp), which a wipe must leave where they are."""
    points = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return points
    for line in lines:
        fields = line.split()
        point = _unescape(fields[4]) if len(fields) > 4 else ""
        if any(point.startswith(d.rstrip("/") + "/") for d in under):
            points.add(point)
    return points


def _unescape(field: str) -> str:
    """A path as /proc/self/mountinfo writes it (space, tab, newline and backslash as octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _wipe(directory: str, keep: set[str]) -> bool:
    """Empty a private directory between jobs, except the paths in ``keep`` and the directories down to them.

    Whatever a job left is removed without recursion (a job may nest directories thousands deep).
    True when nothing else is left.
    """
    from evosearch.sandbox.cleanup import remove_tree

    try:
        names = os.listdir(directory)
    except OSError:
        return not os.path.isdir(directory)
    gone = True
    for name in names:
        path = os.path.join(directory, name)
        if path in keep:
            continue
        if any(k.startswith(path + "/") for k in keep):
            gone = _wipe(path, keep) and gone
        elif os.path.isdir(path) and not os.path.islink(path):
            gone = remove_tree(path) and gone
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError:
                gone = False
    return gone


def _clean_up(options: argparse.Namespace, own_ipc: bool) -> bool:
    """Leave nothing of the job for the next one: processes, private files, IPC objects; True when all went."""
    clean = _sweep()
    if options.mode == "bubblewrap":  # its /tmp, /dev/shm and IPC namespace belong to this sandbox alone
        for directory in PRIVATE_DIRS:
            clean = _wipe(directory, options.bound) and clean
        if not own_ipc:
            clean = _remove_sysv(options.uid if options.drop_uid else None) and clean
    return clean


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evosearch.sandbox.worker")
    parser.add_argument("--mode", default="rlimits", choices=("bubblewrap", "namespaces", "rlimits"))
    parser.add_argument("--uid", type=int, default=65534, help="the unprivileged uid jobs run as (namespaces mode)")
    parser.add_argument("--tmpfs-mb", type=int, default=64)
    parser.add_argument("--seccomp", action="store_true")
    parser.add_argument("--drop-uid", action="store_true", help="bubblewrap mode on a root host: jobs switch to --uid")
    parser.add_argument("--private-ipc", action="store_true",
                        help="each job enters an IPC namespace of its own (namespaces mode always does)")
    parser.add_argument("--catalogue", required=True,
                        help="the module whose JOBS this worker runs; imported before any fork")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = _options(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    # Non-dumpable: /proc/<worker>/fd and /proc/<worker>/mem need CAP_SYS_PTRACE, which no job has.
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    importlib.import_module(options.catalogue)  # the warm import (torch, envs, harness), once for every job

    if options.seccomp:
        from evosearch.sandbox import seccomp_filter  # noqa: F401  - loads libseccomp before any fork
    options.bound = _mount_points(PRIVATE_DIRS) if options.mode == "bubblewrap" else set()
    if options.mode == "namespaces":
        from evosearch.sandbox import launch, namespaces  # noqa: F401

        options.visible = launch.python_paths()  # bound back where a job's view hides a home directory

    in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
    reader = os.fdopen(os.dup(in_fd), "r", encoding="utf-8")
    writer = os.fdopen(os.dup(out_fd), "w", encoding="utf-8", buffering=1)
    worker_pid = os.getpid()
    writer.write(json.dumps({"ready": worker_pid}) + "\n")
    for line in reader:
        request = json.loads(line)
        if "cancel" in request:  # came after its job had ended: nothing left to cancel
            continue
        deadline = time.monotonic() + float(request["wall_s"])
        setup_r, setup_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(setup_r)
            _start_child(request, options, worker_pid, setup_w)
        os.close(setup_w)
        writer.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")
        ended = _wait(pid, in_fd, deadline)
        if ended != "exited":
            _kill_group(pid)  # out of time, or the host is gone: take the job (and its group) down
        _, status, usage = os.wait4(pid, 0)  # measured by us, not reported by the job
        confined, own_ipc = _setup_done(setup_r)
        clean = _clean_up(options, own_ipc)
        if ended == "orphaned":
            return
        writer.write(json.dumps({"id": request["id"], "status": status, "confined": confined, "clean": clean,
                                 "timed_out": ended == "timeout", "cancelled": ended == "cancelled",
                                 "cpu_s": usage.ru_utime + usage.ru_stime,
                                 "peak_rss_mb": usage.ru_maxrss / 1024}) + "\n")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # the host is gone (killed while we started or replied): nothing left to do
        pass
    # At once, without tearing down torch: a host closing its workers waits for each to be gone.
    os._exit(0)
