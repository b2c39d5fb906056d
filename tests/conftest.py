"""Shared fixtures: program sources, the tiny suite, and a check that jobs leave nothing behind."""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "programs" / "rules"
TINY_SUITE = str(ROOT / "tests" / "data" / "tiny.yaml")
BASELINES = ("reinforce", "a2c", "ppo_clip", "dpo")

os.environ.setdefault("OMP_NUM_THREADS", "1")
# Each test session gets its own scratch root, so the leftover check sees only its own jobs.
os.environ["EVOSEARCH_SCRATCH"] = tempfile.mkdtemp(prefix="evosearch-tests-")
atexit.register(shutil.rmtree, os.environ["EVOSEARCH_SCRATCH"], True)  # after the sandbox's own exit handler


def crash_script():
    """``scripts/crash_campaign.py`` as a module (its process helpers serve the sandbox tests too)."""
    spec = importlib.util.spec_from_file_location("crash_campaign", ROOT / "scripts" / "crash_campaign.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def rule_source(name: str) -> str:
    return (RULES / f"{name}.py").read_text()


WORKER_MODULE = "evosearch.sandbox.worker"


def _processes() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, argv) for every process we can read."""
    processes = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        pid = int(stat.split("/")[2])
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        processes[pid] = (int(fields[1]), argv)
    return processes


def _runs_worker_code(argv: list[str]) -> bool:
    """A Python interpreter started on the worker module, or a process forked from one (a job).

    bubblewrap's own command line names the module too (it is the command bwrap starts), so the
    interpreter is part of the test: bwrap and its init are neither workers nor jobs.
    """
    return any(WORKER_MODULE in arg for arg in argv) and "python" in os.path.basename(argv[0])


def _answers_on_a_pipe(pid: int) -> bool:
    """A worker answers its host on stdout; a job's stdout is its output file."""
    try:
        return os.readlink(f"/proc/{pid}/fd/1").startswith(("pipe:", "socket:"))
    except OSError:
        return False


def _descendants(processes: dict[int, tuple[int, list[str]]], roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _names_our_scratch(pid: int) -> bool:
    """Whether a process names this session's scratch root: in its command line (bubblewrap binds a
    worker's root from there) or as its $HOME (a worker outside bubblewrap lives there; its jobs
    keep its environment in /proc)."""
    root = os.environ["EVOSEARCH_SCRATCH"].rstrip("/").encode() + b"/"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return root in cmdline or any(v.startswith(b"HOME=" + root) for v in environ)


def started_by_this_session(pid: int, processes: dict[int, tuple[int, list[str]]] | None = None) -> bool:
    """Whether ``pid`` is this test session's: below us, or it or an ancestor names our scratch root.

    Other test sessions and campaigns on the machine have sandbox processes too, orphans among them,
    and theirs are none of ours to report or kill.
    """
    processes = _processes() if processes is None else processes
    seen = set()
    while pid in processes and pid not in seen:
        if pid == os.getpid() or _names_our_scratch(pid):
            return True
        seen.add(pid)
        pid = processes[pid][0]
    return False


def job_processes() -> list[int]:
    """Processes started by this session's sandbox workers (jobs, or anything a job left behind).

    Works whether a worker is our child or runs inside bubblewrap (us -> bwrap -> bwrap's init ->
    worker -> job). A worker is an interpreter running the worker module whose parent is not one
    and which answers on a pipe; job processes are the descendants of our workers, plus any
    process forked from a worker that is no longer below one (a job that escaped: reparented to
    init, or to bwrap's init after its worker died) and that this session started.
    """
    processes = _processes()
    runs = {pid for pid, (_, argv) in processes.items() if _runs_worker_code(argv)}
    workers = {pid for pid in runs if processes[pid][0] not in runs and _answers_on_a_pipe(pid)}
    ours = workers & _descendants(processes, {os.getpid()})
    below_any_worker = _descendants(processes, workers)
    escaped = {pid for pid in runs - workers - below_any_worker if started_by_this_session(pid, processes)}
    return sorted(_descendants(processes, ours) | escaped)


@pytest.fixture
def no_leftovers():
    """Assert a test leaves no scratch directory and no job process behind."""
    root = os.environ["EVOSEARCH_SCRATCH"]
    patterns = [os.path.join(root, "evosearch-*"), os.path.join(root, "evosearch_worker-*", "evosearch-*")]
    before = {p for pattern in patterns for p in glob.glob(pattern)}
    yield
    after = {p for pattern in patterns for p in glob.glob(pattern)}
    assert after <= before, f"scratch directories left behind: {sorted(after - before)}"
    assert job_processes() == [], "job processes left running"


def cli_in_process(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m evosearch.cli ARGS`` run in this process: the same exit code, stdout and stderr.

    For the many read-only calls (``archive ls|show|diff|lineage|stats|heatmap``...) of tests that
    keep one real subprocess per command: a fresh interpreter costs ~1.5 s of imports (torch) per
    call, this ~0.05 s. ``timeout`` is accepted for the same signature and ignored.
    """
    from click.testing import CliRunner

    from evosearch.cli import main

    result = CliRunner().invoke(main, list(args), prog_name="evosearch", catch_exceptions=True)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the interpreter would print for an uncaught exception (its exit code is 1 too).
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["evosearch", *args], result.exit_code, result.stdout, stderr)


def campaign_config(name: str = "t", **overrides):
    """A campaign on the tiny suite: seconds per evaluation, both seeds, two islands."""
    from evosearch.config import config_from_dict

    raw = {
        "name": name,
        "seeds": [str(RULES / "reinforce.py"), str(RULES / "a2c.py")],
        "parallel": 2,
        "evaluation": {"suite": TINY_SUITE, "hurdle": False, "smoke_timeout_s": 30, "task_timeout_s": 60},
        "budget": {"max_evals": 6},
        "archive": {"islands": 2, "migration_interval": 3, "migration_count": 1},
        **overrides,
    }
    return config_from_dict(raw)


def broken_machine_evaluator(**overrides) -> Any:
    """The real evaluator, whose training task names an environment the job cannot build.

    The probe passes (it needs no environment); training then fails in the harness, inside the
    sandboxed job, before the rule's code is ever asked for a loss: what a GPU that will not
    start or an environment package that will not load look like to the evaluator.
    """
    from dataclasses import replace

    from evosearch.evaluate import CascadeConfig, RuleEvaluator

    config = {"suite": TINY_SUITE, "smoke_timeout_s": 5, "task_timeout_s": 60, "workers": 1, "bootstrap_reps": 200,
              "hurdle": False, **overrides}
    evaluator = RuleEvaluator(CascadeConfig(**config))
    broken = tuple(replace(t, env_id="NoSuchEnvironment-v0") for t in evaluator.suite.tasks)
    evaluator.suite = replace(evaluator.suite, tasks=broken)
    return evaluator


class FailsAtOnce:
    """Every program fails at the smoke stage: for tests of what was proposed, not of what scored."""

    def evaluate(self, program, skip_if=None):
        from evosearch.evaluate import EvalResult

        return EvalResult(outcome="candidate_error", stage="smoke", fingerprint=program.sha, error="not trained here")


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """One finished campaign, shared by the tests that only read it."""
    from evosearch.campaign import Campaign

    db = tmp_path_factory.mktemp("campaign") / "t.db"
    campaign = Campaign(campaign_config(), db_path=db)
    summary = campaign.run()
    campaign.close()
    return db, summary


@pytest.fixture(scope="session")
def a2c_eval():
    """``evosearch eval programs/rules/a2c.py --suite tests/data/tiny.yaml --json`` run once in this process
    (``cli_in_process``), for the tests that read its progress lines and its returns."""
    return cli_in_process("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE, "--json")


@pytest.fixture(scope="session")
def hostile(finished, tmp_path_factory):
    """(database, id of the hostile program): a copy of the finished campaign plus one program whose
    source, note and error hold ``</script><script>alert(1)</script>``; a report must show it as text."""
    from report_helpers import add_hostile_program, copy_db

    db = copy_db(finished[0], tmp_path_factory.mktemp("report") / "hostile.db")
    return db, add_hostile_program(db)


def on_a_terminal(*args: str, timeout: float = 180) -> str:
    """``python -m evosearch.cli ARGS`` with a pty as its terminal (stdin, stdout, stderr): all it wrote."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "evosearch.cli", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=ROOT)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    return b"".join(chunks).decode("utf-8", "replace")
