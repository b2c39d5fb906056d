"""The host's side of the worker protocol: replies, ids, recycling, modes."""

import fcntl
import json
import termios
import time

import pytest
from conftest import rule_source

from evosearch import sandbox
from evosearch.evaluate.jobs import ProbeJob
from evosearch.sandbox import Limits, modes, run_job, runner
from evosearch.sandbox.runner import Worker
from evosearch.sandbox.selfcheck import SelfCheck

#: Wall-clock limits of jobs that end long before them (or are ended by the test): tens of times what
#: they need, even on a machine a quarter as fast as usual.
ROOMY_S = 120


def _request(worker: Worker) -> dict:
    return {"id": "a1", "job": "probe", "payload": {"source": rule_source("a2c")},
            "scratch": worker.inside(worker.new_scratch("probe")), "limits": Limits(wall_s=ROOMY_S).for_worker(),
            "wall_s": ROOMY_S}


def _wait_for_bytes(worker: Worker, count: int, within_s: float) -> int:
    """Wait until the worker's reply pipe holds ``count`` unread bytes; returns how many it holds."""
    fd = worker.process.stdout.fileno()
    deadline = time.monotonic() + within_s
    while True:
        held = int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")
        if held >= count or time.monotonic() > deadline:
            return held
        time.sleep(0.05)


def test_two_replies_arriving_in_one_read_are_both_seen():
    # A fast job's "started" and "finished" lines often reach the pipe together (the host
    # thread was busy); the second must be read from our buffer, not waited for.
    worker = Worker(sandbox.current_mode(), SelfCheck.catalogue)
    try:
        request = _request(worker)
        worker.process.stdin.write((json.dumps(request) + "\n").encode())
        worker.process.stdin.flush()
        # Both lines wait in the pipe once it holds more than the first ('{"id": "a1", "pid": N}', under
        # 30 bytes; the worker writes each line at once): then the job has finished.
        assert _wait_for_bytes(worker, 64, ROOMY_S) >= 64, "the job did not finish"
        started = time.monotonic()
        assert worker._read(5.0)["id"] == "a1"
        finished = worker._read(5.0)
        assert finished is not None and finished["id"] == "a1" and "status" in finished and finished["confined"]
        assert time.monotonic() - started < 1.0
    finally:
        worker.close()


def test_a_reply_with_another_id_retires_the_worker(monkeypatch):
    worker = Worker(sandbox.current_mode(), SelfCheck.catalogue)
    real_read = worker._read

    def forged(timeout):  # as if something else had written a line into the reply pipe
        reply = real_read(timeout)
        return dict(reply, id="forged") if reply else reply

    monkeypatch.setattr(worker, "_read", forged)
    assert worker.run(_request(worker), ROOMY_S) is None
    assert not worker.alive()


def test_workers_are_replaced_after_the_configured_number_of_jobs(monkeypatch):
    started = []
    real_init = runner.Worker.__init__

    def counting(self, mode, catalogue):
        real_init(self, mode, catalogue)
        started.append(self.process.pid)

    monkeypatch.setattr(runner.Worker, "__init__", counting)
    sandbox.configure(None, recycle_after=2)
    try:
        for _ in range(5):
            assert run_job(SelfCheck(), Limits(wall_s=ROOMY_S)).status == "ok"
        assert len(started) == 3  # jobs 1-2, 3-4, then 5
    finally:
        sandbox.configure(None, recycle_after=200)


def test_an_unknown_or_missing_mode_is_a_clear_error():
    with pytest.raises(sandbox.SandboxUnavailable, match="unknown sandbox mode 'chroot'"):
        modes.detect("chroot")


def test_the_mode_summary_names_every_layer_in_force():
    mode = sandbox.current_mode()
    summary = mode.summary()
    assert summary.startswith(mode.name)
    assert ("seccomp" in summary) == mode.seccomp
    names = {layer.name for layer in mode.layers}
    assert {"rlimits", "seccomp", "bubblewrap", "cgroups", "trusted scoring"} <= names
    for layer in mode.layers:
        assert layer.active or layer.hint or "not needed" in layer.detail, layer


HOG = """
import torch
block = torch.ones(1400 * 1024 * 1024 // 4)  # every page written: 1.4 GiB resident, in the rule's companion
"""


def test_the_cgroup_memory_cap_holds_and_its_kill_is_a_memory_limit(monkeypatch):
    # With the cgroup's cap below the address-space limit, only the cgroup can stop this job: its
    # kill must read as running out of memory, not as a crash or a signal from nowhere.
    mode = sandbox.current_mode()
    if not mode.cgroups.memory:
        pytest.skip("no writable memory cgroup here")
    from evosearch.sandbox import cgroups

    monkeypatch.setattr(cgroups, "WORKER_OVERHEAD_MB", -1000)  # cap = 2200 - 1000 MiB, worker included
    job = run_job(ProbeJob(source=HOG + rule_source("a2c")), Limits(wall_s=ROOMY_S, memory_mb=2200))
    assert job.status == "killed" and job.error["type"] == "MemoryError", job.error
    assert "cgroup" in job.error["message"]
    assert run_job(ProbeJob(source=rule_source("a2c")), Limits(wall_s=ROOMY_S)).status == "ok"  # the worker lives on


class _Session:
    """A host-side session (as the policy referee is) that cancels its job, or fails."""

    def __init__(self, then: str) -> None:
        self.then = then

    def prepare(self, scratch: str) -> list[str]:
        return []

    def run(self) -> bool:
        if self.then == "fail":
            raise RuntimeError("the host side broke")
        return True


HANGING_RULE = "import torch\n\n\ndef loss(b):\n    while True:\n        pass\n"


def test_a_session_can_cancel_its_running_job_at_once():
    # A warm worker for the job's catalogue: no start-up in the time.
    assert run_job(ProbeJob(source=rule_source("a2c")), Limits(wall_s=ROOMY_S)).status == "ok"
    start = time.monotonic()
    job = run_job(ProbeJob(source=HANGING_RULE), Limits(wall_s=ROOMY_S), session=_Session("cancel"))
    assert job.status == "cancelled"
    assert time.monotonic() - start < ROOMY_S / 2  # not the wall-clock limit


def test_a_failing_session_stops_its_job_and_leaves_the_worker_usable():
    with pytest.raises(RuntimeError, match="host side broke"):
        run_job(ProbeJob(source=HANGING_RULE), Limits(wall_s=ROOMY_S), session=_Session("fail"))
    probe = run_job(ProbeJob(source=rule_source("a2c")), Limits(wall_s=ROOMY_S))
    assert probe.status == "ok", probe.error
