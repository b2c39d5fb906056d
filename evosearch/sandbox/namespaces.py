"""Per-job isolation with kernel namespaces, for a root host without bubblewrap.

Why: as root, rlimits alone leave the whole machine writable, the network reachable and every
process killable. A forked job child therefore enters its own mount, network, IPC and UTS
namespaces, sees the filesystem read-only apart from its scratch directory and private
``/tmp`` and ``/dev/shm`` (size-capped tmpfs that vanish with it), and then drops to an
unprivileged uid of its own, which takes ``/proc/<pid>/fd`` of other processes, ``kill`` of
them and root-only files away from it. Python 3.11 has no ``os.unshare``; these are the libc
calls through ctypes. Everything here runs in the child after ``fork`` and before the job.

In the other modes a job still gets an IPC namespace of its own (:func:`private_ipc`): System V
shared memory, semaphores and message queues, and POSIX message queues, live in the IPC
namespace, not in any process, so without one a job's segments outlive it, stay charged to the
slot's memory cgroup and are there for the next job to read or to run out of memory against.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pwd

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
#: Per-mount options in /proc/self/mountinfo and their mount flags: a bind remount must restate them.
MOUNT_OPTION_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                      "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}

AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
SYS_MOUNT_SETATTR = 442  # x86_64 and arm64 share the number (added in Linux 5.12)

#: Where nothing may persist after a job: each gets a fresh tmpfs.
PRIVATE_DIRS = ("/tmp", "/dev/shm", "/var/tmp")
#: Hidden behind an empty read-only tmpfs: where keys and credentials live.
HIDDEN_DIRS = ("/root", "/home")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def encoded(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    _check(_libc.mount(encoded(source), encoded(target), encoded(fstype), ctypes.c_ulong(flags), encoded(data)),
           f"mount {target}")


def _read_only_everywhere() -> None:
    """Every mount read-only in one call; the fallback remounts each mount point in turn.

    The fallback (kernels before 5.12, or where a container's filter denies mount_setattr)
    keeps each mount's own flags and adds read-only only: adding ``nodev`` would make every
    device node useless, ``/dev/null`` and the GPU's ``/dev/nvidia*`` included.
    """
    attr = MountAttr(attr_set=MOUNT_ATTR_RDONLY)
    if _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)) == 0:
        return
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = {fields[4]: fields[5] for fields in (line.split() for line in f)}
    for point in sorted(mounts, key=len):
        try:
            mount(None, point, None, remount_read_only_flags(mounts[point]))
        except OSError:
            pass  # a mount we cannot remount (e.g. already gone); the uid drop still guards it


def remount_read_only_flags(options: str) -> int:
    """The flags that remount a bind mount with per-mount ``options`` (as mountinfo shows them) read-only."""
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for option in options.split(","):
        flags |= MOUNT_OPTION_FLAGS.get(option, 0)
    return flags


def _bind(fd: int, target: str, writable: bool) -> None:
    os.makedirs(target, exist_ok=True)
    mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
    mount(None, target, None, flags)


def isolate(scratch: str, uid: int, tmpfs_mb: int, visible: list[str], groups: list[int] | None = None) -> None:
    """Enter private namespaces, make the filesystem read-only except ``scratch``, become ``uid``.

    Home directories are covered by an empty tmpfs; the ``visible`` paths (the Python
    installation and evosearch, which may live in ``/root/.pyenv`` or a clone under ``/tmp``)
    are bound back read-only at their own paths. Paths under a covered directory (the system
    temp directory usually covers the scratch directory) are opened first and bound back from
    their descriptors. ``scratch`` must already belong to ``uid`` (the host hands it over).
    """
    unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates back to the host
    hidden = [d for d in (*HIDDEN_DIRS, real_home()) if d != "/" and os.path.isdir(d)]
    covered = [*PRIVATE_DIRS, *hidden]
    kept = [p for p in visible if _under_any(p, covered) and os.path.isdir(p)]
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in [scratch, *kept]}
    try:
        _read_only_everywhere()
        for path in PRIVATE_DIRS:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=1777")
        for path in hidden:
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for path in kept:
            _bind(fds[path], path, writable=False)
        for path in hidden:
            mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        if _under_any(scratch, covered):
            _bind(fds[scratch], scratch, writable=True)
        else:
            mount(scratch, scratch, None, MS_BIND)
            mount(None, scratch, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    finally:
        for fd in fds.values():
            os.close(fd)
    become(uid, groups or ())


def become(uid: int, groups: list[int] | tuple[int, ...] = ()) -> None:
    """Switch for good to ``uid`` (and the group of the same number), with only ``groups`` besides.

    ``groups`` is empty but for a GPU job on a machine whose device nodes only a group may open
    (``evosearch.sandbox.gpu.device_groups``). From root this clears every capability, so it
    comes after anything that needed one.
    """
    os.setgroups(list(groups))
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def private_ipc() -> str:
    """Move the calling (single-threaded) process into a fresh IPC namespace; returns how.

    With ``CAP_SYS_ADMIN`` (a root job) a plain ``unshare(CLONE_NEWIPC)``: ``"ipc"``. Without it
    (a job already dropped to its own uid, or a host user), the IPC namespace comes with a user
    namespace of its own: ``"user+ipc"``. That user namespace maps the job's uid and gid onto
    themselves, so files, ``getuid()`` and permission checks are as before, and every
    capability it would hold in it is dropped at once: the job ends up with nothing but
    private IPC. Raises OSError where the kernel refuses (user namespaces disabled).
    """
    try:
        unshare(CLONE_NEWIPC)
        return "ipc"
    except OSError:
        pass
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER | CLONE_NEWIPC)
    _map_identity(uid, gid)
    _drop_capabilities()
    return "user+ipc"


def _map_identity(uid: int, gid: int) -> None:
    """Map ``uid`` and ``gid`` onto themselves in the user namespace we just entered.

    The /proc files belong to root while the process is not dumpable (it is not, after a uid
    change or when forked from the worker), so it is made dumpable for the three writes only.
    """
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    try:
        for name, line in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as f:
                f.write(line)
    finally:
        _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def _drop_capabilities() -> None:
    """Drop every capability: the bounding set first (that needs CAP_SETPCAP), then the rest."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")
    header = CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(ctypes.byref(header), ctypes.byref((CapData * 2)())), "capset")


#: Settings that turn unprivileged user namespaces off, and the value that does.
USERNS_OFF = (("user/max_user_namespaces", 0), ("kernel/unprivileged_userns_clone", 0),
              ("kernel/apparmor_restrict_unprivileged_userns", 1))


def private_ipc_possible(job_has_root: bool) -> tuple[bool, str]:
    """Whether a job can get an IPC namespace of its own here, from the kernel's settings (no process made).

    ``job_has_root``: the job runs as root with its capabilities (rlimits mode on a root host) and
    needs no user namespace. Otherwise it needs an unprivileged user namespace.
    """
    if not os.path.exists("/proc/self/ns/ipc"):
        return False, "no IPC namespaces on this system"
    if _sysctl("user/max_ipc_namespaces") == 0:
        return False, "IPC namespaces are disabled (user.max_ipc_namespaces = 0)"
    if job_has_root:
        return True, ""
    for name, off in USERNS_OFF:
        if _sysctl(name) == off:
            return False, f"unprivileged user namespaces are disabled ({name.replace('/', '.')} = {off})"
    return True, ""


def _sysctl(name: str) -> int | None:
    """A numeric kernel setting from /proc/sys, or None where this kernel has no such setting."""
    try:
        with open(f"/proc/sys/{name}", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def real_home() -> str:
    """The user's home from the password database: ``HOME`` in a worker points at its scratch root."""
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return "/"


def _under_any(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)
