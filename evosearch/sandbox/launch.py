"""The command line and environment a warm worker starts with, per sandbox mode.

Why the environment is built, not inherited: a host holds API keys (``OPENAI_API_KEY``) that a
candidate must never read, so a worker gets an allow-list and nothing else. Why home
directories are hidden under bubblewrap: a read-only root still lets root-in-a-namespace read
``~/.ssh`` or a key file; the Python installation is bound back if it lives there.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from evosearch.sandbox.modes import Mode
from evosearch.sandbox.namespaces import HIDDEN_DIRS, PRIVATE_DIRS, real_home

#: Variables a worker may inherit (never secrets): where Python and its packages are, the locale.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHASHSEED",
              "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
FIXED_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
             "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "TMPDIR": "/tmp"}
#: Where a worker's scratch root appears inside bubblewrap, whatever its path (and its parents' modes) outside.
SANDBOX_ROOT = "/tmp/evosearch-sandbox"
TMPFS_MB = 64  # private /tmp, /dev/shm and /var/tmp of a sandbox: jobs write to their scratch directory


def worker_env(home: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(FIXED_ENV, HOME=home)
    return env


def python_paths() -> list[str]:
    """Directories the worker's interpreter needs to see: its prefixes and every import path."""
    paths = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p and os.path.isdir(p) and p != os.getcwd())
    paths.update(p for p in site.getsitepackages() if os.path.isdir(p))
    import evosearch  # the package itself (an editable install lives in the source tree)

    paths.add(str(Path(evosearch.__file__).resolve().parent.parent))
    return sorted(paths)


def gpu_devices() -> list[str]:
    """NVIDIA device nodes of this machine (none on a CPU-only one)."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia*") if p.is_char_device())


def drops_uid() -> bool:
    """Whether jobs switch to an unprivileged uid of their own: possible, and needed, for a root host."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _bwrap_args(mode: Mode, worker_dir: str, env: dict[str, str]) -> list[str]:
    if drops_uid():
        # As root, a user namespace would map the sandbox's uid 0 onto the real root, whose files
        # stay readable with no capability at all. Instead: every namespace but the user one, and
        # only the capabilities to change uid (and, for the worker, to kill a job of another uid and
        # clear what it left in the private /tmp), so that each job becomes a real unprivileged uid;
        # that change clears them all.
        isolation = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                     "--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER"):
            isolation += ["--cap-add", cap]
    else:
        isolation = ["--unshare-all", "--cap-drop", "ALL"]
    # No --die-with-parent: it is PR_SET_PDEATHSIG, which fires when the *thread* that started bwrap
    # ends, and workers are often started by short-lived evaluation threads. A worker leaves when its
    # request pipe closes (the host is gone), and bwrap's pid namespace takes everything with it.
    # --as-pid-1: the worker is the namespace's init (it reaps its jobs' orphans anyway). bwrap's own
    # init would exit without being reaped by the bwrap above it, and linger as a zombie under the
    # host's PID 1 after every worker.
    args = [mode.bwrap or "bwrap", *isolation, "--as-pid-1", "--new-session",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for device in gpu_devices():  # CUDA jobs need the driver's device nodes; --dev leaves them out
        args += ["--dev-bind", device, device]
    for path in PRIVATE_DIRS:
        if os.path.isdir(path):
            args += ["--perms", "1777", "--size", str(TMPFS_MB * 1024 * 1024), "--tmpfs", path]
    hidden = sorted({d for d in (*HIDDEN_DIRS, real_home()) if os.path.isdir(d) and d != "/"})
    for d in hidden:
        args += ["--tmpfs", d]
    # The Python installation and evosearch itself may live under a directory we just covered (a
    # virtualenv in a clone under /tmp, pyenv under /root): bind those paths back, read-only.
    covered = [*PRIVATE_DIRS, *hidden]
    made: set[str] = set()
    bound: list[str] = []
    for path in python_paths():
        cover = next((d for d in covered if path.startswith(d.rstrip("/") + "/")), None)
        if cover is None or any(path.startswith(b + "/") for b in bound):
            continue
        bound.append(path)
        parent = os.path.dirname(path)
        steps = []
        while parent != cover and parent not in made:  # bwrap would create these 0700: unreadable after the uid drop
            steps.append(parent)
            parent = os.path.dirname(parent)
        for step in reversed(steps):
            args += ["--perms", "0755", "--dir", step]
            made.add(step)
        args += ["--ro-bind", path, path]
    args += ["--bind", worker_dir, SANDBOX_ROOT, "--chdir", SANDBOX_ROOT, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + ["--"]


def inside(mode: Mode, worker_dir: str, path: str) -> str:
    """``path`` (under ``worker_dir``) as the worker sees it."""
    if mode.name != "bubblewrap":
        return path
    return SANDBOX_ROOT + path[len(worker_dir.rstrip("/")):]


def worker_command(mode: Mode, worker_dir: str, job_uid: int, procs_files: list[str],
                   catalogue: str) -> tuple[list[str], dict]:
    """(argv, env) that start one worker for ``catalogue``'s jobs; it joins the cgroups in ``procs_files``
    before Python runs."""
    env = worker_env(home=SANDBOX_ROOT if mode.name == "bubblewrap" else worker_dir)
    python = [sys.executable, "-m", "evosearch.sandbox.worker", "--mode", mode.name, "--uid", str(job_uid),
              "--tmpfs-mb", str(TMPFS_MB), "--catalogue", catalogue] + (["--seccomp"] if mode.seccomp else [])
    if mode.name == "bubblewrap" and drops_uid():
        python.append("--drop-uid")
    if mode.private_ipc:
        python.append("--private-ipc")
    argv = (_bwrap_args(mode, worker_dir, env) if mode.name == "bubblewrap" else []) + python
    if procs_files:  # join before exec: nothing of the worker ever runs outside its group
        join = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'
        argv = ["/bin/sh", "-c", join, "sh", *procs_files, "--", *argv]
    return argv, env
