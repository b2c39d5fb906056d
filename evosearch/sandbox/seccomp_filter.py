"""The job's system-call filter (the sandbox's third layer; docs/security.md).

Why a filter on top of namespaces: it is what holds in every mode, bubblewrap or not, root or
not, and it closes the doors a training job never needs: new processes (fork, exec), sockets
other than AF_UNIX, signals to anyone else, tracing or writing other processes' memory, and
the calls that change mounts, namespaces or the kernel. Threads stay allowed (EnvPool and
torch start them), as do matmul, Adam and everything else a rule uses. Denied calls fail with
EPERM, so a hostile program gets a Python exception and a readable outcome, not a dead job.
"""

from __future__ import annotations

import errno
import os
import socket

try:  # a ctypes binding to the system's libseccomp (Debian: libseccomp2)
    import pyseccomp as _seccomp
except (ImportError, OSError):  # not installed, or no libseccomp on this system
    _seccomp = None

CLONE_THREAD = 0x00010000

#: Calls a training job has no use for: processes, tracing, kernel and filesystem administration.
DENIED = (
    "fork", "vfork", "execve", "execveat",
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsmount", "fsconfig",
    "move_mount", "open_tree", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "adjtimex", "sethostname",
    "setdomainname", "iopl", "ioperm", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "name_to_handle_at", "open_by_handle_at", "quotactl", "syslog", "vhangup",
)


def available() -> bool:
    """True where a filter can be loaded: Linux with libseccomp and the pyseccomp binding."""
    return _seccomp is not None and hasattr(_seccomp, "SyscallFilter")


def _add(flt, action, name: str, *args) -> None:
    try:
        flt.add_rule(action, name, *args)
    except (RuntimeError, ValueError, OSError):
        pass  # a call this kernel or architecture does not have


def install() -> None:
    """Load the filter into the calling process (and the threads it starts later); irreversible."""
    if not available():
        raise RuntimeError("seccomp is not available (pip install pyseccomp; needs libseccomp)")
    s = _seccomp
    deny = s.ERRNO(errno.EPERM)
    flt = s.SyscallFilter(defaction=s.ALLOW)
    for name in DENIED:
        _add(flt, deny, name)
    # Threads only: clone without CLONE_THREAD makes a process. clone3 hides its flags in memory
    # a filter cannot read, so it answers ENOSYS and glibc falls back to clone.
    _add(flt, deny, "clone", s.Arg(0, s.MASKED_EQ, CLONE_THREAD, 0))
    _add(flt, s.ERRNO(errno.ENOSYS), "clone3")
    _add(flt, deny, "socket", s.Arg(0, s.NE, socket.AF_UNIX))
    _add(flt, deny, "socketpair", s.Arg(0, s.NE, socket.AF_UNIX))
    # Signals to itself only (raise, abort, os.kill(os.getpid())): never the worker, never -1.
    me = os.getpid()
    _add(flt, deny, "kill", s.Arg(0, s.NE, me))
    _add(flt, deny, "tgkill", s.Arg(0, s.NE, me))
    _add(flt, deny, "tkill")  # glibc signals threads with tgkill; tkill names a thread of anyone
    flt.load()
