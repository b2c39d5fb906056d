"""A job's companion: candidate code in its own process, with nothing but a socket to its job.

Why: a job that runs candidate code in the process that also trains and writes the results
gives the candidate that process's whole Python heap (``sys.modules``, frames, the harness):
no static check can prove all those routes closed. A job whose handler declares a companion
is split in two before any candidate code runs. The job process keeps the trusted work (the
training loop, writing weights) and never executes candidate code; the companion, forked
from it after the rlimits and namespaces are in force, loads the candidate and answers the
job's requests over a socket pair. The companion then loads a filter far stricter than the
job's own: no files opened for writing, no new sockets or processes, no signals, no tracing.
Its only way to influence the job is the bytes of its answers, which the job validates.

The job side finds its end of the socket with :func:`channel`.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import socket
import sys
import traceback
from collections.abc import Callable

from evosearch.sandbox import seccomp_filter
from evosearch.sandbox.jobrun import flush_output

#: The calls a companion may make: memory, its own descriptors, time, threads, exit. Everything
#: else fails with EPERM; ``openat`` is allowed read-only (a lazily imported module of torch).
ALLOWED = (
    "read", "readv", "pread64", "write", "writev", "recvfrom", "sendto", "close", "lseek", "fstat", "newfstatat",
    "statx", "stat", "lstat", "readlink", "readlinkat", "getdents64", "getcwd", "dup", "dup3",
    "mmap", "munmap", "mremap", "mprotect", "brk", "madvise", "futex", "futex_waitv", "set_robust_list",
    "get_robust_list", "rseq", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getrandom", "sched_yield",
    "sched_getaffinity", "getrlimit", "prlimit64", "getrusage", "times", "uname", "sysinfo",
    "poll", "ppoll", "select", "pselect6", "exit", "exit_group", "membarrier",
)
#: ``fcntl`` commands that only read or set a descriptor's own flags (not F_SETOWN, which aims signals).
FCNTL_ALLOWED = (1, 2, 3, 1030)  # F_GETFD, F_SETFD, F_GETFL, F_DUPFD_CLOEXEC
#: Flags that make ``openat`` write, create or truncate: refused.
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_TMPFILE", 0)

_fd: int | None = None  # the job's end of the socket, in the job process
_pid: int | None = None


def channel() -> tuple[socket.socket, int]:
    """The job's end of the socket to its companion, and the companion's pid (for its exit status)."""
    if _fd is None or _pid is None:
        raise RuntimeError("this job has no companion (its handler declares none)")
    return socket.socket(fileno=_fd), _pid


def install_filter() -> None:
    """Load the companion's allow-list filter into the calling process; irreversible."""
    if not seccomp_filter.available():
        raise RuntimeError("seccomp is not available (pip install pyseccomp; needs libseccomp)")
    import pyseccomp as s

    flt = s.SyscallFilter(defaction=s.ERRNO(errno.EPERM))
    allow = s.ALLOW
    for name in ALLOWED:
        _add(flt, allow, name)
    for command in FCNTL_ALLOWED:
        _add(flt, allow, "fcntl", s.Arg(1, s.EQ, command))
    _add(flt, allow, "openat", s.Arg(2, s.MASKED_EQ, WRITE_FLAGS, 0))
    _add(flt, allow, "open", s.Arg(1, s.MASKED_EQ, WRITE_FLAGS, 0))
    # Threads (torch may start one), never processes; clone3 hides its flags, so glibc falls back.
    _add(flt, allow, "clone", s.Arg(0, s.MASKED_EQ, seccomp_filter.CLONE_THREAD,
                                                       seccomp_filter.CLONE_THREAD))
    _add(flt, s.ERRNO(errno.ENOSYS), "clone3")
    me = os.getpid()  # signals to itself only (abort, raise)
    _add(flt, allow, "kill", s.Arg(0, s.EQ, me))
    _add(flt, allow, "tgkill", s.Arg(0, s.EQ, me))
    flt.load()


def _add(flt, action, name: str, *args) -> None:
    try:
        flt.add_rule(action, name, *args)
    except (RuntimeError, ValueError, OSError):
        pass  # a call this kernel or architecture does not have


def start(serve: Callable[[socket.socket], None], *, seccomp: bool) -> None:
    """Fork the companion, which runs ``serve`` on its end of a socket pair; call before the job's own filter.

    ``seccomp`` False (no libseccomp here) still separates the processes, so the candidate cannot
    reach the job's Python objects, but the companion is then only as confined as the job.
    """
    global _fd, _pid
    job_end, companion_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    job_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            job_end.close()
            _confine(companion_end.fileno(), job_pid, seccomp)
            serve(companion_end)
            code = 0
        except BaseException:  # noqa: BLE001 - the job reads the companion's end as a closed socket
            try:
                traceback.print_exc()
            except BaseException:  # noqa: BLE001 - its output file may be full
                pass
        finally:
            flush_output()
            os._exit(code)
    companion_end.close()
    _fd, _pid = job_end.detach(), pid


def _confine(keep: int, job_pid: int, seccomp: bool) -> None:
    """Keep only stdin/stdout/stderr and the socket; die with the job; no capabilities; the allow-list filter."""
    os.closerange(3, keep)
    os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: the job's end is the companion's end
        if os.getppid() != job_pid:  # the job ended before the tie was made
            os._exit(1)
        _drop_capabilities(libc)
    if seccomp:
        install_filter()


def _drop_capabilities(libc) -> None:
    """Empty every capability set: where jobs run as root (the rlimits mode), CAP_SYS_PTRACE would
    otherwise let the companion read the job's memory through /proc, non-dumpable or not."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset: could not drop the companion's capabilities")
