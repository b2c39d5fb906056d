"""A control group per worker slot: a memory cap no file trick escapes, a pid cap, and a kill.

Why, on top of rlimits: ``RLIMIT_AS`` does not count pages a job parks in a tmpfs, and a process
group kill misses a process that left the group. A cgroup counts every page its processes
touch and ``cgroup.kill`` (or a sweep of ``cgroup.procs``) takes every process in it. The host
creates the group, and the worker joins it before it execs (so nothing runs outside it); the
limits change per job as the job's memory limit does. Works with cgroup v2, v1, or the hybrid
layout (v1 controllers plus a v2 tree used only for ``cgroup.kill``), wherever it is writable.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Headroom over the job's own memory limit for the warm worker (torch, EnvPool) it forks from.
WORKER_OVERHEAD_MB = 1024


def _mounts() -> tuple[str | None, dict[str, str]]:
    """(cgroup2 mount point, {v1 controller: mount point}) from /proc/self/mountinfo."""
    v2, v1 = None, {}
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        left, _, right = line.partition(" - ")
        fstype, _, options = (right.split() + ["", "", ""])[:3]
        point = left.split()[4]
        if fstype == "cgroup2":
            v2 = v2 or point
        elif fstype == "cgroup":
            for opt in options.split(","):
                if opt in ("memory", "pids"):
                    v1[opt] = point
    return v2, v1


def _own_paths() -> tuple[str | None, dict[str, str]]:
    """Our own cgroup: (v2 path, {v1 controller: path}) from /proc/self/cgroup."""
    v2, v1 = None, {}
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        hid, controllers, path = line.split(":", 2)
        if hid == "0":
            v2 = path
        for c in controllers.split(","):
            if c in ("memory", "pids"):
                v1[c] = path
    return v2, v1


@dataclass
class Support:
    """Where each cgroup feature lives here: the parent directory new groups go under."""

    memory: tuple[str, Path] | None = None  # ("v1" | "v2", parent directory)
    pids: tuple[str, Path] | None = None
    kill: Path | None = None  # a v2 parent whose children have cgroup.kill
    problems: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.memory or self.pids or self.kill)

    def describe(self) -> str:
        parts = []
        if self.memory:
            parts.append(f"memory ({self.memory[0]})")
        if self.pids:
            parts.append(f"pids ({self.pids[0]})")
        if self.kill:
            parts.append("kill (v2)")
        return ", ".join(parts) or "none"


def _probe(parent: Path) -> tuple[bool, bool]:
    """(can we create groups under ``parent``, do they have ``cgroup.kill``), by making one and removing it."""
    probe = parent / f"evosearch-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False, False
    try:
        return True, (probe / "cgroup.kill").exists()
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass


def detect() -> Support:
    """What this process may use: it needs a writable cgroup directory of its own to create groups in."""
    support = Support()
    v2_mount, v1_mounts = _mounts()
    v2_own, v1_own = _own_paths()
    if v2_mount and v2_own is not None:
        parent = Path(v2_mount) / v2_own.lstrip("/")
        writable, has_kill = _probe(parent)
        if writable:
            if has_kill:
                support.kill = parent
            enabled = _read(parent / "cgroup.subtree_control").split()
            if "memory" not in enabled or "pids" not in enabled:
                _try_enable(parent, support)
                enabled = _read(parent / "cgroup.subtree_control").split()
            if "memory" in enabled:
                support.memory = ("v2", parent)
            if "pids" in enabled:
                support.pids = ("v2", parent)
        else:
            support.problems.append(f"cgroup v2 directory {parent} is not writable")
    for controller in ("memory", "pids"):
        if getattr(support, controller) or controller not in v1_mounts:
            continue
        parent = Path(v1_mounts[controller]) / v1_own.get(controller, "/").lstrip("/")
        if _probe(parent)[0]:
            setattr(support, controller, ("v1", parent))
        else:
            support.problems.append(f"cgroup v1 {controller} directory {parent} is not writable")
    return support


def _try_enable(parent: Path, support: Support) -> None:
    available = _read(parent / "cgroup.controllers").split()
    wanted = [c for c in ("memory", "pids") if c in available]
    if not wanted:
        return
    try:
        (parent / "cgroup.subtree_control").write_text(" ".join("+" + c for c in wanted))
    except OSError as err:  # EBUSY: our own group holds processes (the v2 "no internal process" rule)
        support.problems.append(f"cannot enable {'+'.join(wanted)} under {parent}: {err.strerror}")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class SlotGroup:
    """The cgroup(s) of one worker slot, in every hierarchy that offers something."""

    def __init__(self, support: Support, name: str) -> None:
        self.dirs: dict[str, Path] = {}  # role -> directory: "memory", "pids", "kill"
        self._version: dict[str, str] = {}
        made: dict[Path, Path] = {}
        for role, where in (("memory", support.memory), ("pids", support.pids),
                            ("kill", ("v2", support.kill) if support.kill else None)):
            if where is None:
                continue
            version, parent = where
            if parent not in made:
                path = parent / name
                path.mkdir(exist_ok=True)
                made[parent] = path
            self.dirs[role] = made[parent]
            self._version[role] = version

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the worker writes its pid into before it execs."""
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def set_limits(self, memory_mb: int, pids: int) -> None:
        if "memory" in self.dirs:
            limit = str((memory_mb + WORKER_OVERHEAD_MB) * 1024 * 1024)
            if self._version["memory"] == "v2":
                _write(self.dirs["memory"] / "memory.max", limit)
                _write(self.dirs["memory"] / "memory.swap.max", "0")
            else:  # memsw may not drop below the limit, nor the limit rise above memsw: write both twice
                for _ in range(2):
                    _write(self.dirs["memory"] / "memory.limit_in_bytes", limit)
                    _write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", limit)
        if "pids" in self.dirs:
            _write(self.dirs["pids"] / "pids.max", str(pids))

    def oom_kills(self) -> int:
        """How many processes the kernel has killed in this group for running out of memory."""
        if "memory" not in self.dirs:
            return 0
        name = "memory.events" if self._version["memory"] == "v2" else "memory.oom_control"
        for line in _read(self.dirs["memory"] / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def shmem_mb(self) -> float:
        """Shared memory charged to this group (tmpfs files, System V and POSIX segments), in MiB.

        The one charge that outlives the processes that made it: the anonymous memory of a process
        goes with the process, these pages go only when their file or segment is removed.
        """
        if "memory" not in self.dirs:
            return 0.0
        for line in _read(self.dirs["memory"] / "memory.stat").splitlines():
            key, _, value = line.partition(" ")
            if key == "shmem":
                return int(value) / (1024 * 1024)
        return 0.0

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs.values():
            found.update(int(p) for p in _read(d / "cgroup.procs").split())
        return found

    def kill(self) -> None:
        """SIGKILL every process in the group, and wait (briefly) until it is empty."""
        if "kill" in self.dirs:
            _write(self.dirs["kill"] / "cgroup.kill", "1")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            left = self.pids()
            if not left:
                return
            for pid in left:  # no cgroup.kill, or processes still exiting: sweep
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill()
        for d in set(self.dirs.values()):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass  # e.g. memsw without swap accounting: the other limits still hold
