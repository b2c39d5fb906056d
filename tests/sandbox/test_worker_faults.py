"""A worker or a job killed from outside: that job fails with the right outcome, the next one runs.

Issue 6: "A worker killed from outside becomes ``sandbox_failure`` for that job, and the next job
runs." The processes are found in /proc while the job runs (``scripts/crash_campaign.py`` has
the helpers): the warm worker is the interpreter running ``evosearch.sandbox.worker`` whose
parent does not (it may sit inside bubblewrap: us -> bwrap -> bwrap's init -> worker -> job),
and the job is the worker's forked child.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import TINY_SUITE, crash_script, job_processes, rule_source

from evosearch.evaluate import CascadeConfig, RuleEvaluator
from evosearch.evaluate.jobs import ProbeJob
from evosearch.program import Program
from evosearch.sandbox import Limits, run_job
from evosearch.sandbox.runner import shutdown

procs = crash_script()

#: A rule whose loss sleeps: plenty of time to find its processes and kill one (its import of time
#: needs the full builtins, which only a test of the OS layers turns on).
SLEEPS = "import time\n\ndef loss(b):\n    time.sleep(600)\n    return (b.logp * b.adv).mean() + b.value.mean()\n"
#: The same through the static check (no imports): a loss that spins.
SPINS = "def loss(b):\n    n = 0\n    while n < 10 ** 10:\n        n += 1\n    return (b.logp * b.adv).mean()\n"
#: The jobs' wall-clock limit: the test kills them within seconds, so this never ends one, even on a
#: machine a quarter as fast as usual (the outcome is what the kill makes it, never a timeout).
ROOMY_S = 120
LIMITS = Limits(wall_s=ROOMY_S)
#: How long the host may take to see a lost worker or job: far below the limit above, far above the
#: fraction of a second it takes.
NOTICE_S = 30


@pytest.fixture(autouse=True)
def one_warm_worker():
    """Start with exactly one warm worker, started by this (the main) thread, so the test knows which
    worker serves its jobs (a worker started by a thread may not outlive it: see the last test)."""
    shutdown()
    assert probe_a2c().status == "ok"
    assert len(procs.sandbox_workers()) == 1
    yield
    shutdown()


def probe_a2c():
    return run_job(ProbeJob(source=rule_source("a2c"), filename="a2c.py"), LIMITS)


def running_job(timeout: float = ROOMY_S, in_code: bool = False) -> tuple[int, int]:
    """(worker pid, job pid) of the one job our workers are running, once it runs.

    ``in_code``: wait until the job has finished confining itself (its working directory is its
    scratch directory, the last step before candidate code) and had a moment to enter the loss.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = procs.proc_table()
        for worker in procs.sandbox_workers(table):
            jobs = [pid for pid, (ppid, _) in table.items() if ppid == worker]
            for job in jobs:
                if not in_code:
                    return worker, job
                try:
                    cwd = os.readlink(f"/proc/{job}/cwd")
                except OSError:
                    continue
                if os.path.basename(cwd).startswith("evosearch-probe-"):
                    time.sleep(1.0)  # loading the rule and building the probe batch: into the loss
                    return worker, job
        time.sleep(0.05)
    raise AssertionError("no sandbox job appeared")


def sandbox_of(worker: int) -> dict[int, int]:
    """The worker, the bubblewrap processes above it that are ours, and everything below it: pid -> start."""
    table = procs.proc_table()
    ours = procs.descendants(table, os.getpid())
    chain = {worker}
    pid = table[worker][0]
    while pid in ours:
        chain.add(pid)
        pid = table[pid][0]
    chain |= procs.descendants(table, worker)
    return {p: table[p][1] for p in chain if p in table}


def assert_gone(processes: dict[int, int], within_s: float = 20.0) -> None:
    _, left = procs.wait_for_exit(processes, within_s)
    assert not left, f"still running {within_s} s later: {[procs.describe(p) for p in left]}"


def test_a_worker_killed_from_outside_is_a_sandbox_failure_and_the_next_evaluation_runs(no_leftovers):
    evaluator = RuleEvaluator(CascadeConfig(suite=TINY_SUITE, smoke_timeout_s=ROOMY_S, task_timeout_s=ROOMY_S,
                                            workers=1, bootstrap_reps=200))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(evaluator.evaluate, Program(SPINS, name="spins.py"))
        worker, _ = running_job()
        killed = sandbox_of(worker)
        start = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        result = future.result(timeout=ROOMY_S + 60)
    assert time.monotonic() - start < NOTICE_S, "the host took long to notice its worker had died"
    assert (result.outcome, result.stage) == ("sandbox_failure", "smoke"), result.error
    assert "worker" in result.error and result.score is None
    assert_gone(killed)
    again = evaluator.evaluate(Program(rule_source("a2c"), name="a2c.py"))
    assert again.outcome == "ok" and again.stage == "full", again.error
    assert worker not in procs.sandbox_workers()
    assert job_processes() == [] and procs.sandbox_jobs() == []


def test_run_job_reports_a_lost_worker_and_starts_a_fresh_one(no_leftovers):
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run_job, ProbeJob(source=SLEEPS, filename="sleeps.py", minimal_builtins=False), LIMITS)
        worker, job = running_job()
        killed = sandbox_of(worker)
        os.kill(worker, signal.SIGKILL)
        outcome = future.result(timeout=ROOMY_S + 60)
    assert outcome.status == "crashed" and outcome.error["type"] == "WorkerLost", outcome.error
    assert_gone(killed)  # the job too: nobody is left to report it
    assert job_processes() == [] and procs.sandbox_jobs() == []
    nxt = probe_a2c()
    assert nxt.status == "ok" and nxt.result["fingerprint"], nxt.error
    workers = procs.sandbox_workers()
    assert len(workers) == 1 and workers[0] != worker, "the lost worker was not replaced by a fresh one"
    assert job_processes() == [] and procs.sandbox_jobs() == []


def test_a_job_killed_from_outside_is_killed_and_its_worker_serves_the_next_job(no_leftovers):
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run_job, ProbeJob(source=SLEEPS, filename="sleeps.py", minimal_builtins=False), LIMITS)
        worker, job = running_job(in_code=True)
        os.kill(job, signal.SIGKILL)
        outcome = future.result(timeout=ROOMY_S + 60)
    assert outcome.status == "killed" and "SIGKILL" in outcome.error["message"], outcome.error
    assert outcome.wall_s < NOTICE_S
    assert procs.sandbox_workers() == [worker], "the worker did not survive its job"
    nxt = probe_a2c()
    assert nxt.status == "ok" and nxt.result["fingerprint"], nxt.error
    assert procs.sandbox_workers() == [worker], "the next job did not run in the same worker"
    assert job_processes() == [] and procs.sandbox_jobs() == []


def test_evaluation_of_a_job_killed_from_outside_is_killed(no_leftovers):
    evaluator = RuleEvaluator(CascadeConfig(suite=TINY_SUITE, smoke_timeout_s=ROOMY_S, task_timeout_s=ROOMY_S,
                                            workers=1, bootstrap_reps=200))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(evaluator.evaluate, Program(SPINS, name="spins.py"))
        worker, job = running_job(in_code=True)
        os.kill(job, signal.SIGKILL)
        result = future.result(timeout=ROOMY_S + 60)
    assert (result.outcome, result.stage) == ("killed", "smoke"), result.error
    assert "SIGKILL" in result.error
    assert procs.sandbox_workers() == [worker]


def test_a_worker_outlives_the_thread_that_started_it(no_leftovers):
    # bwrap --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that started bwrap
    # ends: a worker first needed by a short-lived thread (RuleEvaluator._run_tasks makes a pool per
    # evaluation) died with it, mid-job if another thread had taken it from the pool meanwhile.
    shutdown()  # no warm worker: the thread below starts one
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(probe_a2c).result(timeout=ROOMY_S + 60).status == "ok"
    workers = procs.sandbox_workers()
    time.sleep(1.0)
    assert workers and procs.sandbox_workers() == workers, "the worker died with the thread that started it"
