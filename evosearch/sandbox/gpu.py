"""What a sandboxed job needs to start CUDA, which mode gives it, and which layer takes it away.

A CUDA job opens the driver's device nodes (``/dev/nvidiactl``, ``/dev/nvidia0``,
``/dev/nvidia-uvm``), maps far more address space than it touches, starts a few driver threads
and uses ``memfd_create`` and ``ioctl`` freely. Each sandbox layer can take one of these away:
a job that drops to an unprivileged uid loses device nodes that only root or a group may
open; a mount remounted ``nodev`` loses every device node on it; an address-space limit or a
thread limit makes the driver's first calls fail with "OS call failed or operation not
supported on this OS" (CUDA error 304). So GPU jobs get their own limits (``Limits.gpu``: no
address-space limit, room for threads, the device nodes' groups), and before a campaign puts
jobs on a GPU, :func:`sandbox_for_gpu` starts CUDA in a real job of the mode in force. Where
that fails, ``auto`` falls back to the strongest mode in which it works, loudly, and an
explicitly asked-for mode is refused with the job's error; either way no program is blamed.
:func:`diagnose` finds the layer that breaks CUDA in namespaces mode by applying the layers
one at a time in forked children (``evosearch doctor --gpu``).

Nothing here initialises CUDA in the calling process: a process that forks jobs must not
(the children would inherit a driver state they cannot use).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Threads a GPU job may have (RLIMIT_NPROC counts threads per uid): the CUDA driver starts a
#: few per context, torch and the data loader more. Processes stay blocked by seccomp.
GPU_NPROC_LIMIT = 1024
CHECK_WALL_S = 180.0  # a first CUDA start on a big machine can take tens of seconds


def device_nodes(root: str = "/dev") -> list[str]:
    """NVIDIA device nodes of this machine (none on a CPU-only one)."""
    return sorted(str(p) for p in Path(root).glob("nvidia*") if p.is_char_device())


def present() -> bool:
    """Whether this machine has an NVIDIA GPU torch could use, without starting CUDA here.

    Device nodes plus a CUDA build of torch: asking torch itself (``torch.cuda.is_available()``)
    would initialise the driver in this process, which then must not fork jobs.
    """
    try:
        import torch
    except ImportError:
        return False
    return bool(device_nodes()) and torch.version.cuda is not None


def device_groups(nodes: list[str] | None = None) -> list[int]:
    """Groups that let a job's unprivileged uid open device nodes that everyone else may not.

    A node that every user may read and write needs none. One that only its group may use
    (``crw-rw---- root video``) needs that group, and only that: the job keeps no other.
    """
    groups: set[int] = set()
    for node in device_nodes() if nodes is None else nodes:
        try:
            st = os.stat(node)
        except OSError:
            continue
        if st.st_mode & 0o006 != 0o006 and st.st_mode & 0o060 == 0o060:
            groups.add(st.st_gid)
    return sorted(groups)


def obstacles(drops_uid: bool, nodes: list[str] | None = None) -> list[str]:
    """What keeps a job of a mode from the GPU, found without starting anything (empty: nothing known)."""
    nodes = device_nodes() if nodes is None else nodes
    found = []
    if drops_uid:
        closed = [n for n in nodes if (st := _stat(n)) is not None and st.st_mode & 0o006 != 0o006
                  and st.st_mode & 0o060 != 0o060]
        if closed:
            found.append(f"{', '.join(closed)} may be opened by root only (mode "
                         f"{stat.filemode(os.stat(closed[0]).st_mode)}), and jobs run as an unprivileged uid: "
                         "give the nodes a group (chgrp video /dev/nvidia*; chmod 660 /dev/nvidia*)")
    if nodes and not any(os.path.basename(n) == "nvidia-uvm" for n in nodes) and not shutil.which("nvidia-modprobe"):
        found.append("/dev/nvidia-uvm does not exist and nvidia-modprobe is not installed to create it; a "
                     "sandboxed job may not (no exec, no root): run any CUDA program once as root first")
    return found


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def prepare() -> None:
    """Create the UVM device nodes if they are missing, from the trusted host (a job may not exec or be root).

    The CUDA driver does this itself through the setuid ``nvidia-modprobe`` on first use, which
    seccomp denies inside a job.
    """
    if os.path.exists("/dev/nvidia-uvm") or not device_nodes():
        return
    tool = shutil.which("nvidia-modprobe")
    if tool:
        subprocess.run([tool, "-u", "-c=0"], capture_output=True, timeout=60, check=False)


# -- the check, inside a job ------------------------------------------------------------------------


def start_cuda(device: str) -> dict[str, Any]:
    """Start CUDA on ``device`` as a training job does (a generator, a tensor, a kernel); what it found.

    Runs inside the sandboxed job (or a diagnosis child); raises whatever the driver raises.
    """
    import time

    import torch

    if torch.device(device).type == "cuda" and torch.version.cuda is None:
        raise RuntimeError(f"this torch build has no CUDA (torch {torch.__version__})")
    begin = time.perf_counter()
    generator = torch.Generator(device=device)  # where CUDA jobs that cannot start it fail first
    generator.manual_seed(0)
    x = torch.randn(256, 256, device=device, generator=generator)
    value = float((x @ x).sum().item())
    where = torch.device(device)
    name = torch.cuda.get_device_name(where.index or 0) if where.type == "cuda" else where.type
    return {"device": device, "name": name, "cuda": torch.version.cuda,
            "start_s": round(time.perf_counter() - begin, 3), "finite": value == value}


# -- choosing the mode for GPU jobs -----------------------------------------------------------------


@dataclass
class GpuVerdict:
    """Which sandbox mode GPU jobs run in, and what happened in the modes tried before it."""

    mode: Any  # evosearch.sandbox.modes.Mode
    device: str
    found: dict = field(default_factory=dict)  # what the check reported in the mode chosen
    failed: dict[str, str] = field(default_factory=dict)  # mode name -> why CUDA did not start there

    @property
    def fell_back(self) -> bool:
        return bool(self.failed)

    def warning(self) -> str:
        """The loud line for a fallback: what failed where, and what the chosen mode gives up."""
        tried = "; ".join(f"in {name}: {why}" for name, why in self.failed.items())
        return (f"CUDA does not start inside a sandboxed job ({tried}); GPU jobs run in sandbox mode "
                f"{self.mode.name}{'' if self.mode.strong else ', which is WEAK: candidates can reach this machine'}"
                ". `evosearch doctor --gpu` names the layer that blocks it")


_verdicts: dict[tuple[str, str], GpuVerdict] = {}


def job_check(mode: Any, device: str) -> tuple[str | None, dict]:
    """Start CUDA in a real job of ``mode``, the mode in force: (None, what it found) or (why it failed, {})."""
    from evosearch.sandbox import runner
    from evosearch.sandbox.selfcheck import GpuCheck

    if runner.current_mode().name != mode.name:
        runner.configure(mode.name)
    job = runner.run_job(GpuCheck(device=device), runner.Limits(wall_s=CHECK_WALL_S, gpu=True))
    if job.status == "ok":
        return None, job.result
    err = job.error or {}
    why = f"{err.get('type', job.status)}: {err.get('message', '')}".strip(": ")
    return (why.splitlines()[0][:300] if why else job.status), {}


def sandbox_for_gpu(device: str, requested: str = "auto",
                    check: Callable[[Any, str], tuple[str | None, dict]] = job_check,
                    warn: Callable[[str], None] | None = None) -> GpuVerdict:
    """The sandbox mode in which jobs start CUDA on ``device``: the requested one, or (``auto``) the strongest.

    Decided once per process and device (a check is a job that starts CUDA, seconds). Raises
    SandboxUnavailable when an explicitly requested mode cannot start CUDA, or when no mode can.
    """
    from evosearch.sandbox import modes
    from evosearch.sandbox.runner import configure

    key = (device, requested or "auto")
    if key in _verdicts:
        verdict = _verdicts[key]
        if modes.current().name != verdict.mode.name:  # another caller switched modes meanwhile
            configure(verdict.mode.name)
        return verdict
    prepare()
    explicit = bool(requested and requested != "auto")
    failed: dict[str, str] = {}
    for name in [requested] if explicit else modes.MODES:  # strongest first
        try:
            mode = configure(name)  # detected once; the check's job, and later every job, runs in it
        except modes.SandboxUnavailable:
            if explicit:
                raise
            continue  # this mode does not run on this machine at all
        why, found = check(mode, device)
        if why is None:
            verdict = GpuVerdict(mode, device, found, failed)
            if failed and warn is not None:
                warn(verdict.warning())
            _verdicts[key] = verdict
            return verdict
        failed[name] = why[:300]
    configure(requested or "auto")  # leave the mode in force as it was asked for
    tried = "; ".join(f"in {name}: {why}" for name, why in failed.items())
    if explicit:
        raise modes.SandboxUnavailable(
            f"CUDA does not start on {device} inside sandbox mode {requested} ({tried}). `evosearch doctor --gpu` "
            "names the layer that blocks it; --sandbox auto falls back to the strongest mode where it starts")
    raise modes.SandboxUnavailable(f"CUDA does not start on {device} inside any sandbox mode ({tried}); "
                                   "use --device cpu, or see `evosearch doctor --gpu`")


def forget() -> None:
    """Drop the decisions made so far (tests; a machine whose driver was fixed meanwhile)."""
    _verdicts.clear()


# -- which layer: namespaces mode, one layer at a time -----------------------------------------------


@dataclass(frozen=True)
class Step:
    """One layer of the namespaces mode's confinement, applied in a diagnosis child."""

    name: str
    apply: Callable[[], None]


def namespace_steps(scratch: str, uid: int, tmpfs_mb: int = 64) -> list[Step]:
    """The namespaces mode's layers in the order a job gets them (see the worker's ``_confine``)."""
    import resource

    from evosearch.sandbox import namespaces, seccomp_filter
    from evosearch.sandbox.launch import python_paths

    state: dict[str, Any] = {}

    def namespaces_only() -> None:
        state["scratch"] = os.open(scratch, os.O_PATH | os.O_DIRECTORY)  # under /tmp it is about to be covered
        namespaces.unshare(namespaces.CLONE_NEWNS | namespaces.CLONE_NEWNET | namespaces.CLONE_NEWIPC
                           | namespaces.CLONE_NEWUTS)
        namespaces.mount(None, "/", None, namespaces.MS_REC | namespaces.MS_PRIVATE)

    def read_only() -> None:
        namespaces._read_only_everywhere()

    def private_dirs() -> None:
        for path in namespaces.PRIVATE_DIRS:
            if os.path.isdir(path):
                namespaces.mount("tmpfs", path, "tmpfs", namespaces.MS_NOSUID | namespaces.MS_NODEV,
                                 f"size={tmpfs_mb}m,mode=1777")

    def hidden_homes() -> None:
        hidden = [d for d in (*namespaces.HIDDEN_DIRS, namespaces.real_home()) if d != "/" and os.path.isdir(d)]
        kept = [p for p in python_paths() if any(p.startswith(d + "/") for d in hidden) and os.path.isdir(p)]
        fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in kept}
        for d in hidden:
            namespaces.mount("tmpfs", d, "tmpfs", namespaces.MS_NOSUID | namespaces.MS_NODEV, "size=1m,mode=755")
        for p, fd in fds.items():
            namespaces._bind(fd, p, writable=False)
            os.close(fd)
        state["hidden"] = hidden

    def unprivileged_uid() -> None:
        os.fchdir(state["scratch"])  # the job's scratch directory, wherever a tmpfs now covers its path
        namespaces.become(uid, device_groups())

    def rlimits() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (GPU_NPROC_LIMIT, GPU_NPROC_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))

    def seccomp() -> None:
        if seccomp_filter.available():
            seccomp_filter.install()

    return [Step("mount, network, IPC and UTS namespaces", namespaces_only), Step("read-only root", read_only),
            Step("private /tmp, /dev/shm, /var/tmp", private_dirs), Step("hidden home directories", hidden_homes),
            Step("unprivileged uid", unprivileged_uid), Step("rlimits", rlimits), Step("seccomp", seccomp)]


@dataclass
class Diagnosis:
    """CUDA's start after each cumulative step: the first step after which it fails is the culprit."""

    results: list[tuple[str, str | None]]  # (step, None if CUDA started after it, else why not)

    @property
    def culprit(self) -> str | None:
        return next((step for step, why in self.results if why is not None), None)

    def describe(self) -> str:
        if not self.results:
            return "not diagnosed"
        culprit = self.culprit
        if culprit is None:
            return "CUDA starts after every layer of namespaces mode"
        why = dict(self.results)[culprit]
        if culprit == "none (unconfined child)":
            return f"CUDA does not start even without the sandbox: {why}"
        return f"CUDA stops starting at the layer '{culprit}': {why}"


def diagnose(device: str, steps: list[Step], start: Callable[[str], Any] = start_cuda,
             timeout_s: float = CHECK_WALL_S) -> Diagnosis:
    """Start CUDA in forked children after 0, 1, 2, ... of ``steps``; stops at the first that fails.

    Each child applies its steps (which may need root), starts CUDA and reports on a pipe. The
    caller must not have started CUDA itself.
    """
    results: list[tuple[str, str | None]] = []
    for count in range(len(steps) + 1):
        name = steps[count - 1].name if count else "none (unconfined child)"
        why = _in_child(lambda count=count: ([s.apply() for s in steps[:count]], start(device)), timeout_s)
        results.append((name, why))
        if why is not None:
            break
    return Diagnosis(results)


def _in_child(work: Callable[[], Any], timeout_s: float) -> str | None:
    """Run ``work`` in a forked child: None if it returned, else its error (or how the child ended)."""
    import select
    import signal

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        try:
            work()
            message = ""
        except BaseException as err:  # noqa: BLE001 - reported to the parent, whatever it was
            message = f"{type(err).__name__}: {err}".splitlines()[0][:300] or type(err).__name__
        os.write(write, json.dumps({"error": message}).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    try:
        ready, _, _ = select.select([read], [], [], timeout_s)
        while ready:
            data = os.read(read, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(read)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
    if not chunks:
        return f"the child ended without a report (wait status {status})" if status else "no report within the limit"
    error = json.loads(b"".join(chunks)).get("error", "")
    return error or None


__all__ = ["Diagnosis", "GpuVerdict", "Step", "device_groups", "device_nodes", "diagnose", "job_check",
           "namespace_steps", "obstacles", "prepare", "present", "sandbox_for_gpu", "start_cuda"]
