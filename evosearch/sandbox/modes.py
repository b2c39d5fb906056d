"""Which sandbox this machine can give, decided once at start and said out loud.

Modes, strongest first (docs/security.md has the threat model):

- ``bubblewrap``: each warm worker runs inside ``bwrap --unshare-all --cap-drop ALL`` with a
  read-only root, private ``/tmp`` and ``/dev/shm``, home directories hidden and a cleared
  environment. Root or not (unprivileged user namespaces), Linux only.
- ``namespaces``: root without bubblewrap. Each job enters its own mount, network, IPC and UTS
  namespaces, sees a read-only root and private tmpfs, and drops to an unprivileged uid.
- ``rlimits``: anything else (non-root without bubblewrap, macOS). Process group, rlimits,
  scratch directory and wall-clock kill only: enough against accidents, not against malice.

On top of every mode: seccomp where libseccomp is usable, cgroups where writable, and scoring
in processes that never ran candidate code. What of a job could outlive it on its warm worker
(IPC objects, temporary files, processes, memory charged to the slot) is the doctor's "job
isolation" row: held in both strong modes, only in part in ``rlimits``. ``EVOSEARCH_SANDBOX`` (or a config's
``evaluation.sandbox``) asks for a mode; ``auto`` takes the strongest that works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from evosearch.sandbox import cgroups, namespaces, seccomp_filter

MODES = ("bubblewrap", "namespaces", "rlimits")
STRONG = ("bubblewrap", "namespaces")


class SandboxUnavailable(RuntimeError):
    """The sandbox mode asked for cannot run on this machine; the message says why and what to do."""


@dataclass(frozen=True)
class Layer:
    """One defence and whether it is in force here."""

    name: str
    active: bool
    detail: str
    hint: str = ""  # how to get it when it is missing


@dataclass(frozen=True)
class Mode:
    name: str
    seccomp: bool
    cgroups: cgroups.Support = field(default_factory=cgroups.Support)
    bwrap: str | None = None
    private_ipc: bool = False  # each job gets an IPC namespace of its own
    layers: tuple[Layer, ...] = ()

    @property
    def strong(self) -> bool:
        return self.name in STRONG

    def summary(self) -> str:
        """One line for logs: ``bubblewrap + seccomp + cgroups (memory (v1), ...) + rlimits``."""
        parts = [self.name]
        if self.seccomp:
            parts.append("seccomp")
        if self.cgroups.any:
            parts.append(f"cgroups ({self.cgroups.describe()})")
        if self.name != "rlimits":
            parts.append("rlimits")
        return " + ".join(parts)


def _bwrap_works(path: str) -> tuple[bool, str]:
    try:
        # --as-pid-1 as the workers run: bwrap's own init would be left a zombie under the host's PID 1.
        run = subprocess.run([path, "--unshare-all", "--cap-drop", "ALL", "--as-pid-1", "--die-with-parent",
                              "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    return run.returncode == 0, run.stderr.strip()


def _namespaces_work() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, "not Linux"
    if os.geteuid() != 0:
        return False, "needs root"
    code = ("from evosearch.sandbox import namespaces as n; "
            "n.unshare(n.CLONE_NEWNS | n.CLONE_NEWNET | n.CLONE_NEWIPC | n.CLONE_NEWUTS)")
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    return run.returncode == 0, (run.stderr.strip().splitlines() or [""])[-1]


def _private_ipc(name: str) -> tuple[bool, str]:
    """Whether jobs in mode ``name`` get an IPC namespace of their own here, and if not, why not."""
    if not sys.platform.startswith("linux"):
        return False, "Linux only"
    if name == "namespaces":  # root, and the job's namespaces include one
        return True, ""
    # A root job (rlimits mode as root) unshares by itself; the others are unprivileged and need a user namespace.
    return namespaces.private_ipc_possible(job_has_root=name == "rlimits" and os.geteuid() == 0)


def _job_isolation(name: str, private_ipc: bool, why: str) -> Layer:
    """What of a job is gone before the next job on the same worker starts, in mode ``name``.

    Processes are killed and reaped by the worker (a subreaper) in every mode, and no job may
    create a POSIX message queue; the rest depends on what the mode gives a job of its own.
    """
    ipc = "own IPC namespace, gone with the job" if private_ipc else f"no IPC namespace of its own ({why})"
    if name == "bubblewrap" and not private_ipc:
        ipc += ": the worker removes the System V objects a job leaves in the worker's"
    files = {"namespaces": "own /tmp, /dev/shm and /var/tmp, gone with the job",
             "bubblewrap": "private /tmp, /dev/shm and /var/tmp emptied"}.get(name)
    held = (f"per job: leftover processes killed; {ipc}; {files or 'scratch directory as $TMPDIR'}; "
            "no POSIX message queues")
    if files:
        return Layer("job isolation", True, held)
    missing = "/tmp and /dev/shm are the host's: files a job leaves there outlive it"
    if not private_ipc:
        missing += ", and so do its System V objects"
    return Layer("job isolation", False, f"{held}; NOT held: {missing}",
                 "a strong mode: install bubblewrap, or run as root")


def _install_hint() -> str:
    if shutil.which("apt-get"):
        return "apt-get install bubblewrap"
    if shutil.which("dnf"):
        return "dnf install bubblewrap"
    if shutil.which("brew"):
        return "no bubblewrap on macOS: run campaigns in a Linux VM or container for a strong sandbox"
    return "install bubblewrap from your distribution's packages"


def detect(requested: str = "auto") -> Mode:
    """The mode to use: ``requested`` if it works here (else :class:`SandboxUnavailable`), or the strongest."""
    requested = requested or "auto"
    if requested not in ("auto", *MODES):
        raise SandboxUnavailable(f"unknown sandbox mode {requested!r}: choose auto, {', '.join(MODES)}")
    linux = sys.platform.startswith("linux")
    bwrap = shutil.which("bwrap") if linux else None
    bwrap_ok, bwrap_why = _bwrap_works(bwrap) if bwrap and requested in ("auto", "bubblewrap") else (False, "")
    ns_ok, ns_why = (False, "")
    if requested == "namespaces" or (requested == "auto" and not bwrap_ok):
        ns_ok, ns_why = _namespaces_work()
    if requested == "bubblewrap" and not bwrap_ok:
        why = f"bwrap failed: {bwrap_why}" if bwrap else f"bwrap is not installed ({_install_hint()})"
        raise SandboxUnavailable(f"sandbox mode bubblewrap is not available: {why}")
    if requested == "namespaces" and not ns_ok:
        raise SandboxUnavailable(f"sandbox mode namespaces is not available: {ns_why}")
    if requested == "auto":
        name = "bubblewrap" if bwrap_ok else "namespaces" if ns_ok else "rlimits"
    else:
        name = requested
    support = cgroups.detect() if linux else cgroups.Support(problems=["cgroups are Linux-only"])
    private_ipc, ipc_why = _private_ipc(name)
    seccomp = linux and seccomp_filter.available()
    layers = (
        Layer("process per job", True, "forked from a warm worker: own session, wall-clock kill, scratch directory"),
        Layer("rlimits", True, "address space, CPU seconds, file size, open files, no core dumps"),
        Layer("seccomp", seccomp,
              "no fork/exec, no sockets but AF_UNIX, signals to itself only, no ptrace or mount"
              if seccomp else "not loaded",
              "" if seccomp else ("pip install pyseccomp (needs libseccomp: apt-get install libseccomp2)"
                                  if linux else "Linux only")),
        Layer("bubblewrap", name == "bubblewrap",
              f"{bwrap}: own pid, network, IPC, UTS, mount namespaces, read-only root, private /tmp and "
              "/dev/shm, home directories hidden, cleared environment, no capabilities"
              + (", jobs as an unprivileged uid" if os.geteuid() == 0 else ", user namespace")
              if name == "bubblewrap"
              else (f"present but failing: {bwrap_why}" if bwrap and bwrap_why
                    # not probed: another mode was asked for, so bwrap was found but never tried
                    else f"installed ({bwrap}), not used: sandbox mode {name} was chosen" if bwrap
                    else "not installed"),
              "" if name == "bubblewrap" else "--sandbox bubblewrap (or auto) uses it" if bwrap and not bwrap_why
              else _install_hint()),
        Layer("namespaces + uid drop", name == "namespaces",
              "per job: mount, network, IPC, UTS namespaces, read-only root, private tmpfs, unprivileged uid"
              if name == "namespaces" else ("not needed: bubblewrap is in force" if name == "bubblewrap"
                                            else f"not available ({ns_why or 'needs root on Linux'})"),
              "" if name != "rlimits" else "run as root, or install bubblewrap"),
        Layer("cgroups", support.any, support.describe() if support.any else "; ".join(support.problems) or "none",
              "" if support.memory and support.pids else
              "run as root, or in a delegated cgroup (systemd-run --user --scope -p Delegate=yes ...)"),
        _job_isolation(name, private_ipc, ipc_why),
        Layer("trusted scoring", True, "scores are measured by fresh jobs that never ran candidate code"),
    )
    return Mode(name=name, seccomp=seccomp, cgroups=support, bwrap=bwrap if name == "bubblewrap" else None,
                private_ipc=private_ipc, layers=layers)


_current: Mode | None = None
_requested: str | None = None


def requested_mode() -> str:
    return _requested or os.environ.get("EVOSEARCH_SANDBOX", "auto")


def current() -> Mode:
    """The mode in force in this process, detected on first use."""
    global _current
    if _current is None:
        _current = detect(requested_mode())
    return _current


def set_requested(requested: str | None) -> Mode:
    """Detect ``requested`` now (raising if it cannot run) and make it the mode in force."""
    global _current, _requested
    mode = detect(requested or os.environ.get("EVOSEARCH_SANDBOX", "auto"))
    _requested, _current = requested, mode
    return mode
