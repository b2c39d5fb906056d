"""Nothing of one job reaches the next on the same warm worker (issue 15, breach 2), in each mode here.

Each program in ``hostile/ipc_*.py`` and ``hostile/leak_*.py`` leaves something behind that a
process does not take with it when it exits: System V segments (memory charged to the slot),
semaphores and message queues, POSIX shared memory in ``/dev/shm``, files in the temporary
directories, a daemon or a thread. It runs as a job on a worker; then, on that same worker, a job
that looks at what it can see and touches the memory an honest job needs, and A2C's probe, which
must give the reference fingerprint. The host checks the slot's cgroup between them: its
processes are the worker's own again and its shared memory is back to where it was.

This module is also the job catalogue of the workers it starts (``CATALOGUE``: the worker imports
it by name, from ``PYTHONPATH``). Its ``pollute`` job runs a program's module code in the job
process itself, under the job's own filter: a rule's code runs in a companion under a stricter
one that refuses these calls, so a rule would test nothing here. The evaluation's jobs are
re-exported, so the honest probe runs on the very worker the polluter used. Nothing here imports
``conftest`` at module level: a worker imports this module too.

In ``rlimits`` mode ``/tmp`` and ``/dev/shm`` are the host's, so files left there outlive the
job; the test checks that the doctor says so, and that a worker whose slot still holds their
memory is retired rather than reused.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import glob
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from evosearch.evaluate import jobs as evaluation
from evosearch.sandbox import Job, Limits, cgroups, modes, runner

HERE = Path(__file__).resolve().parent
HOSTILE = HERE / "hostile"
CATALOGUE = __name__
MODES = ("bubblewrap", "namespaces", "rlimits")
ROOMY_S = 120  # jobs here end in well under a second; the clock never decides an outcome
CAP_MB = 900  # the slot's memory cap in these tests (the worker's ~150 MiB included)
NEED_MB = 256  # what the honest job takes: more than a polluter that filled the slot would leave
LEAK = "evosearch-leak-"  # the start of every name a polluter gives what it leaves
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


# -- the catalogue (runs in the worker's jobs) ------------------------------------------------------

@dataclass(frozen=True)
class Pollute(Job):
    """Run a program's module code in the job process; report the module's simple globals and the view after."""

    catalogue: ClassVar[str] = CATALOGUE
    name: ClassVar[str] = "pollute"
    source: str
    prefix: str

    def payload(self) -> dict[str, Any]:
        return {"source": self.source, "prefix": self.prefix}


@dataclass(frozen=True)
class Look(Job):
    """What an honest job sees of its predecessors, after taking ``need_mb`` of memory for itself."""

    catalogue: ClassVar[str] = CATALOGUE
    name: ClassVar[str] = "look"
    prefix: str
    need_mb: int = NEED_MB

    def payload(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "need_mb": self.need_mb}


@dataclass(frozen=True)
class Probe(evaluation.ProbeJob):
    """The evaluation's probe, served by this catalogue's workers."""

    catalogue: ClassVar[str] = CATALOGUE


def _sysv_counts() -> dict[str, int]:
    counts = {}
    for kind in ("shm", "sem", "msg"):
        with open(f"/proc/sysvipc/{kind}", encoding="ascii") as f:
            counts[kind] = len(f.read().splitlines()) - 1
    return counts


def _mqueue_exists(name: str) -> bool:
    librt = ctypes.CDLL("librt.so.1", use_errno=True)
    mq = librt.mq_open(name.encode(), os.O_RDONLY)
    if mq >= 0:
        librt.mq_close(mq)
    return mq >= 0


def _view(prefix: str) -> dict[str, Any]:
    dirs = {*TEMP_DIRS, tempfile.gettempdir()}
    with open("/proc/self/status", encoding="ascii") as f:
        threads = int(next(line.split()[1] for line in f if line.startswith("Threads:")))
    return {
        "sysv": _sysv_counts(),
        "files": sorted(p for d in dirs for p in glob.glob(os.path.join(d, prefix + "*"))),
        "mqueue": _mqueue_exists(f"/{prefix}posix"),
        "threads": threads,
        "ipc_namespace": os.readlink("/proc/self/ns/ipc"),
    }


def _pollute(payload: dict, scratch: str) -> dict:
    module: dict[str, Any] = {"__name__": "polluter"}
    exec(compile(payload["source"], "polluter.py", "exec"), module)  # the point of the job: run it as it is
    simple = {k: v for k, v in module.items() if not k.startswith("_") and isinstance(v, (int, str, type(None)))}
    return {"globals": simple, "view": _view(payload["prefix"])}


def _look(payload: dict, scratch: str) -> dict:
    block = b"\xff" * (int(payload["need_mb"]) << 20)  # every page touched: charged to the slot
    view = _view(payload["prefix"])
    view["took_mb"] = len(block) >> 20
    return view


JOBS = {**evaluation.JOBS, Pollute.name: _pollute, Look.name: _look}


# -- the host's side --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    """What the polluter must show it did (in its own view), so that the honest job's clean view means something."""

    did: str  # "sysv.<kind>", "files", or "running": threads besides the main one, and a daemon forked
    at_least: int = 1


POLLUTERS = {
    "ipc_sysv_shm": Expect("sysv.shm", 4),
    "ipc_sysv_sem_msg": Expect("sysv.sem"),
    "ipc_posix_shm": Expect("files", 2),  # a sandbox's /dev/shm holds 64 MiB
    "leak_tmp_files": Expect("files", 2),
    "leak_processes": Expect("running"),  # a daemon, or where seccomp refuses the fork, a thread
}


def _measure(report: dict, what: str) -> int:
    view = report["view"]
    if what.startswith("sysv."):
        return view["sysv"][what[5:]]
    if what == "running":
        return view["threads"] - 1 + bool(report["globals"].get("child"))
    return len(view["files"])


def _polluter(name: str, prefix: str, free_mb: float) -> str:
    """The program's source with this session's names, and the System V one sized to fill the slot."""
    source = (HOSTILE / f"{name}.py").read_text().replace(f'"{LEAK}', f'"{prefix}')
    if name == "ipc_sysv_shm":  # 32 MiB segments up to 160 MiB short of the cap (the polluter's own needs fit)
        segments = max(4, int(free_mb - 160) // 32)
        source = source.replace("SEGMENTS = 19", f"SEGMENTS = {segments}")
        source = source.replace("SEGMENT_MB = 256", "SEGMENT_MB = 32")
    return source


def _limits() -> Limits:
    return Limits(wall_s=ROOMY_S, memory_mb=CAP_MB, limit_address_space=False)


class Served:
    """Records the worker each job got (``runner._acquire``), to show that they are one and the same."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.workers: list[runner.Worker] = []
        real = runner._acquire

        def acquire(catalogue: str) -> runner.Worker:
            worker = real(catalogue)
            self.workers.append(worker)
            return worker

        monkeypatch.setattr(runner, "_acquire", acquire)

    @property
    def last(self) -> runner.Worker:
        return self.workers[-1]


def _charge_mb(worker: runner.Worker) -> float:
    """What the slot holds now: its memory usage, shared memory included."""
    memory = worker.group.dirs["memory"]
    name = "memory.usage_in_bytes" if (memory / "memory.usage_in_bytes").exists() else "memory.current"
    return int((memory / name).read_text()) / (1024 * 1024)


def _eventually(condition: Callable[[], bool], within_s: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``within_s``: what the kernel frees after a job, it frees a moment later."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextlib.contextmanager
def _in_mode(mode: modes.Mode | str):
    """Run in another sandbox mode (a name, or a Mode object for a variant of one), then back to the one before."""
    before = modes.requested_mode()
    try:
        if isinstance(mode, str):
            runner.configure(mode)
        else:
            runner.shutdown()
            modes._current = mode
    except modes.SandboxUnavailable as err:
        runner.configure(before)
        pytest.skip(f"sandbox mode {mode} is not available here: {err}")
    try:
        yield runner.current_mode()
    finally:
        runner.configure(before)


@pytest.fixture(scope="module")
def catalogue_path():
    """Workers import this module by name: put its directory on their PYTHONPATH."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
        yield


@pytest.fixture(scope="module", params=MODES)
def mode(request, catalogue_path):
    """Each mode this machine offers, with a memory cgroup per slot: what these tests measure."""
    with _in_mode(request.param) as chosen:
        if not chosen.cgroups.memory:
            pytest.skip("no writable memory cgroup here: a slot's charge cannot be measured")
        yield chosen


@pytest.fixture(scope="module")
def reference(mode) -> str:
    """A2C's probe fingerprint in this mode, before any polluter ran."""
    from conftest import rule_source

    probe = runner.run_job(Probe(source=rule_source("a2c")), _limits())
    assert probe.status == "ok", probe.error
    return probe.result["fingerprint"]


@pytest.fixture
def prefix():
    """Names for what a polluter leaves, this test's own; whatever is left on the host goes afterwards."""
    name = f"{LEAK}{os.getpid()}-{secrets.token_hex(3)}-"
    yield name
    for path in (p for d in TEMP_DIRS for p in glob.glob(os.path.join(d, name + "*"))):
        with contextlib.suppress(OSError):
            os.unlink(path)


@pytest.fixture
def tight(monkeypatch):
    """The slot's cap is the job's memory limit, no headroom for the worker: a small cap fills quickly."""
    monkeypatch.setattr(cgroups, "WORKER_OVERHEAD_MB", 0)


def _strong(mode: modes.Mode) -> bool:
    return mode.name in modes.STRONG


@dataclass
class After:
    """A polluter's run and the honest jobs after it."""

    worker: runner.Worker  # the one the polluter ran on
    kept: bool  # whether the host gave it the next job
    polluted: dict  # what the polluter saw once done
    seen: dict  # what the honest job saw


def _run_after(polluter: str, mode: modes.Mode, reference: str, prefix: str, served: Served) -> After:
    """Polluter, then the honest look and probe on the same worker (unless the host retired it)."""
    from conftest import rule_source

    warm = runner.run_job(Look(prefix=prefix, need_mb=1), _limits())  # a warm worker, its slot at rest
    assert warm.status == "ok", warm.error
    worker = served.last
    assert worker.alive() and not worker.left_behind, f"an honest job retired its worker: {worker.left_behind}"
    pids, charge, shmem = worker.group.pids(), _charge_mb(worker), worker.group.shmem_mb()

    dirty = runner.run_job(Pollute(source=_polluter(polluter, prefix, CAP_MB - charge), prefix=prefix), _limits())
    assert dirty.status == "ok", dirty.error
    expect = POLLUTERS[polluter]
    assert _measure(dirty.result, expect.did) >= expect.at_least, f"{polluter} left nothing: {dirty.result}"
    kept = worker.alive() and not worker.left_behind
    if kept:  # the host hands it the next job: its slot must be as it was, once the kernel has freed the job's IPC
        assert worker.group.pids() == pids, "a process of the polluter is still in the slot"
        assert _eventually(lambda: worker.group.shmem_mb() < shmem + 1), f"{worker.group.shmem_mb():.0f} MiB held"
        if _strong(mode):  # in rlimits mode files left on the host's disk stay in the page cache (reclaimable)
            assert _eventually(lambda: _charge_mb(worker) < charge + 32), f"{_charge_mb(worker):.0f} MiB charged"

    look = runner.run_job(Look(prefix=prefix), _limits())
    assert look.status == "ok", f"the honest job after {polluter}: {look.status} {look.error}"
    assert look.result["took_mb"] == NEED_MB
    probe = runner.run_job(Probe(source=rule_source("a2c")), _limits())
    assert probe.status == "ok" and probe.result["fingerprint"] == reference, (probe.status, probe.error)
    if kept:
        assert served.workers[-3:] == [worker] * 3, "the honest jobs did not run on the polluter's worker"
    return After(worker, kept, dirty.result["view"], look.result)


def _outlives_its_job(polluter: str, mode: modes.Mode) -> bool:
    """Whether what ``polluter`` leaves is out of the mode's reach (files in the host's /tmp or /dev/shm)."""
    return not _strong(mode) and polluter in ("ipc_posix_shm", "leak_tmp_files")


NOTHING = {"shm": 0, "sem": 0, "msg": 0}


# -- the tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("polluter", sorted(POLLUTERS))
def test_an_honest_job_after_a_polluter_on_the_same_worker_sees_nothing_of_it(polluter, mode, reference, prefix,
                                                                              tight, monkeypatch, no_leftovers):
    after = _run_after(polluter, mode, reference, prefix, Served(monkeypatch))
    seen = after.seen
    assert seen["sysv"] == NOTHING, seen
    assert not seen["mqueue"], "a POSIX message queue outlived its job"
    assert seen["threads"] == 1, seen
    if not _outlives_its_job(polluter, mode):
        assert seen["files"] == [], seen
        assert after.kept, f"the worker was retired: {after.worker.left_behind}"
        return
    # rlimits: the host's /tmp and /dev/shm, as the doctor says; memory left in a tmpfs retires the worker
    assert seen["files"], "the files a job left in the host's temporary directories are gone after all?"
    assert "NOT held" in next(layer.detail for layer in mode.layers if layer.name == "job isolation")
    if polluter == "ipc_posix_shm":
        assert not after.kept and "MiB of shared memory" in after.worker.left_behind, after.worker.left_behind


def test_without_a_job_ipc_namespace_the_worker_removes_what_a_job_left_in_its_own(catalogue_path, prefix, tight,
                                                                                    monkeypatch, no_leftovers):
    # Where the kernel gives jobs no IPC namespace of their own (user namespaces off), a bubblewrap
    # worker's namespace is shared by its jobs one after the other: the worker empties it after each.
    from conftest import rule_source

    with _in_mode("bubblewrap") as strong, _in_mode(dataclasses.replace(strong, private_ipc=False)) as mode:
        if not mode.cgroups.memory:
            pytest.skip("no writable memory cgroup here: a slot's charge cannot be measured")
        served = Served(monkeypatch)
        reference = runner.run_job(Probe(source=rule_source("a2c")), _limits()).result["fingerprint"]
        for polluter in ("ipc_sysv_shm", "ipc_sysv_sem_msg"):
            after = _run_after(polluter, mode, reference, prefix, served)
            assert after.polluted["ipc_namespace"] == after.seen["ipc_namespace"], "the job had a namespace of its own"
            assert after.seen["sysv"] == NOTHING and after.kept, (after.seen, after.worker.left_behind)
        assert len(set(served.workers)) == 1


def test_a_daemon_left_by_a_job_without_seccomp_is_dead_before_the_next_job(mode, reference, prefix, tight,
                                                                            monkeypatch, no_leftovers):
    # Where no seccomp filter refuses fork, a job can leave a daemon in a session of its own: the
    # worker, a subreaper, kills it before it answers, and the slot's cgroup shows it gone.
    with _in_mode(dataclasses.replace(mode, seccomp=False)) as unfiltered:
        served = Served(monkeypatch)
        after = _run_after("leak_processes", unfiltered, reference, prefix, served)
        assert after.kept, after.worker.left_behind
        assert after.seen["threads"] == 1


@pytest.mark.parametrize("how", ["asked", "killed"])
def test_a_closed_worker_leaves_no_process_not_even_a_zombie(how, mode, prefix, no_leftovers):
    # bwrap's own init used to exit unreaped and linger under the host's PID 1 ([bwrap] <defunct>).
    worker = runner.Worker(mode, CATALOGUE)
    request = {"id": "z1", "job": "look", "payload": {"prefix": prefix, "need_mb": 1},
               "scratch": worker.inside(worker.new_scratch("look")), "limits": _limits().for_worker(),
               "wall_s": ROOMY_S}
    assert worker.run(request, ROOMY_S) is not None
    started = (worker.group.pids() if worker.group else set()) | {worker.process.pid}
    if how == "killed":  # a worker that does not answer: stopped, so that only SIGKILL moves it
        for pid in started - {worker.process.pid}:
            os.kill(pid, signal.SIGSTOP)
    worker.close()
    deadline = time.monotonic() + 10
    while _in_process_table(started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _in_process_table(started), f"still in the process table: {_in_process_table(started)}"


def _in_process_table(pids: set[int]) -> set[int]:
    """Those of ``pids`` the kernel still lists (a zombie included)."""
    return {pid for pid in pids if os.path.exists(f"/proc/{pid}")}


def test_the_doctor_says_what_of_a_job_outlives_it_in_each_mode():
    for name in MODES:
        try:
            layers = modes.detect(name).layers
        except modes.SandboxUnavailable:
            continue
        layer = next(layer for layer in layers if layer.name == "job isolation")
        assert "leftover processes killed" in layer.detail and "no POSIX message queues" in layer.detail
        assert ("NOT held" in layer.detail) == (name == "rlimits"), layer
        assert layer.active == (name != "rlimits")
