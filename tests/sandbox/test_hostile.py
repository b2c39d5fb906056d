"""Hostile rule programs through the real evaluator: each gets its outcome and leaves the host unchanged.

Every program in ``hostile/`` (one attack each, otherwise A2C) runs twice: with the static check
on, as a campaign runs it (most are rejected there; the rest run in the sandbox's auto mode), and
with the check off in each strong sandbox mode, so that the OS layers are what is tested
(issue 6). ``CASES`` gives each program's outcomes and extra checks; after every run the host
must be unchanged where the program aimed:

1. what it tried to write is as the test left it: ``__TARGET__``, a fresh name in the directory it
   attacks (the repository, $HOME, /tmp, /etc or /dev/shm), stays absent and nothing named after
   it appears there; ``__CANARY__``, a file the test planted beside it, keeps its bytes and mtime;
   the harness keeps its sha256. Only these paths are looked at, never a whole directory: other
   processes on the machine come and go in $HOME and /tmp (caches, logs, other test sessions);
2. no scratch directory of this test session left behind;
3. no job process of this test session left behind (``conftest.job_processes``);
4. the worker alive or respawned: the next honest job runs and gets the reference fingerprint.

Limits: a program whose outcome is ``timeout`` runs under a short smoke limit (the limit is what
ends it; the check is that it ends promptly). Every other program runs under wall-clock limits it
never comes near, even on a machine a quarter as fast as usual, so that the limit meant to stop
it (memory, file size, descriptors, processes) and not the clock decides its outcome.

Programs take values from the test through placeholders: ``__TARGET__`` and ``__CANARY__`` (see
1.), ``__PORT__`` (a TCP server on the host's 127.0.0.1), ``__VICTIM__`` (the pid of a host process
that must survive) and ``__SECRET_FILE__`` (a key file in $HOME, named for this test session).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, TINY_SUITE, job_processes, rule_source

from evosearch import sandbox
from evosearch.evaluate import CascadeConfig, EvalResult, RuleEvaluator
from evosearch.evaluate.jobs import ProbeJob
from evosearch.program import Program, static_check
from evosearch.sandbox import Limits, modes, run_job

HOSTILE = Path(__file__).parent / "hostile"
HARNESS = ROOT / "evosearch" / "train" / "harness.py"
HOME = Path.home()
SECRET_FILE = HOME / f".evosearch-test-secret-{os.getpid()}-{secrets.token_hex(4)}"  # this session's alone
SECRET_VAR = "OPENAI_API_KEY"
MARK = "evosearch-pwned"  # in the name of everything a hostile program tries to create
STRONG_MODES = ("bubblewrap", "namespaces")
#: The smoke limit of the programs whose outcome is "timeout": it is what ends them.
SMOKE_TIMEOUT_S = 4
TIMEOUT_SLACK_S = 6  # a job past its wall-clock limit is gone this much later at most
#: Every other wall-clock limit here (smoke, training, probes): such a program ends in a second or
#: two, or trains the tiny suite in a few seconds, so this is tens of times what it needs even at a
#: quarter of the usual speed; its own limit (memory, files, processes), not the clock, must stop it.
ROOMY_S = 120
TARGET_DIRS = {"repo": ROOT, "home": HOME, "tmp": Path("/tmp"), "etc": Path("/etc"), "shm": Path("/dev/shm")}


@dataclass
class Run:
    """One hostile program's run: what it was given and what it got."""

    name: str
    static: bool
    result: EvalResult | None = None
    target: Path | None = None
    canary: Canary | None = None
    server: LoopbackServer | None = None
    victim: subprocess.Popen | None = None
    secret: str = ""


class Canary:
    """A file the test plants where a program will try to write; it must stay as planted.

    Where the test may not write (/etc for a user that is not root) nothing is planted, and the
    path must stay absent instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.content = f"canary {secrets.token_hex(16)}\n".encode()
        try:
            path.write_bytes(self.content)
        except OSError:  # PermissionError, or a read-only file system
            self.state = None
        else:
            self.state = self._state()

    def _state(self) -> tuple[bytes, int, int] | None:
        try:
            info = os.stat(self.path, follow_symlinks=False)
            return self.path.read_bytes(), info.st_mtime_ns, info.st_mode
        except OSError:
            return None

    def problem(self) -> str:
        now = self._state()
        if now == self.state:
            return ""
        if self.state is None:
            return f"{self.path} was written"
        return f"{self.path} was removed" if now is None else f"{self.path} was modified"

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class LoopbackServer:
    """A TCP server on the host's 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        """Stop, after counting every connection the kernel completed (waiting in the backlog) too."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(30)
        self.sock.setblocking(False)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                break
            self.connections += 1
            conn.close()
        self.sock.close()


# -- extra checks, per program ---------------------------------------------------------------------

def _named_after(target: Path) -> list[str]:
    """The target and anything in its directory whose name starts with its name (``<target>-3``)."""
    with os.scandir(target.parent) as entries:
        return sorted(e.path for e in entries if e.name.startswith(target.name))


def target_absent(run: Run) -> None:
    written = _named_after(run.target)
    assert not written, f"written: {written}"


def canary_intact(run: Run) -> None:
    problem = run.canary.problem()
    assert not problem, problem


def server_saw_nothing(run: Run) -> None:
    assert run.server.connections == 0, f"the host's loopback server accepted {run.server.connections} connection(s)"


def victim_alive(run: Run) -> None:
    assert run.victim.poll() is None, f"the host process {run.victim.pid} was killed ({run.victim.returncode})"


def output_small(run: Run) -> None:
    result = run.result
    assert len(result.output_tail) <= 4000, f"output tail of {len(result.output_tail)} characters"
    assert len(result.error) <= 4000, f"error of {len(result.error)} characters"


def nothing_succeeded(run: Run) -> None:
    if run.static:
        return  # rejected before running
    assert "escape attempts" in run.result.error, "the program did not get as far as reporting its attempts"
    assert "SUCCEEDED" not in run.result.error, run.result.error


def secret_nowhere(run: Run) -> None:
    everything = repr(run.result.to_dict())
    assert run.secret not in everything, "the secret is in the result"
    if not run.static:
        assert "found [] in" in run.result.error, f"the program did not run to its report: {run.result.error[:300]}"


def same_score_as_honest_a2c(run: Run) -> None:
    result = run.result
    if not result.ok:
        return  # the outcome is reported already
    honest = honest_a2c()
    # Training and scoring are deterministic per seed, so the scores are compared exactly.
    assert result.score == honest.score, f"score {result.score}, honest A2C {honest.score}"
    assert {k: t.returns for k, t in result.tasks.items()} == {k: t.returns for k, t in honest.tasks.items()}


#: The loss of the harness_swap_* programs, without the swap: what they must score exactly.
LOSS_ALONE = "def loss(b):\n    return 1e-9 * (b.logp.sum() + b.value.sum())\n"
_alone: dict[str, EvalResult] = {}


def scores_like_its_loss_alone(run: Run) -> None:
    """Whatever the program did to the harness in its own process, the trainer trained its loss."""
    result = run.result
    if not result.ok:
        return
    mode = sandbox_mode()
    if mode not in _alone:
        _alone[mode] = evaluator(static=True).evaluate(Program(LOSS_ALONE, name="loss_alone.py"))
        assert _alone[mode].ok, _alone[mode].error
    alone = _alone[mode]
    assert result.score == alone.score, f"score {result.score}, its loss alone {alone.score}"
    assert {k: t.returns for k, t in result.tasks.items()} == {k: t.returns for k, t in alone.tasks.items()}


@dataclass(frozen=True)
class Case:
    """Expected outcomes of one program (a tuple: any of them) and its extra host checks."""

    static_on: str | tuple[str, ...]  # with the static check on (the sandbox in its auto mode)
    static_off: str | tuple[str, ...]  # with it off, in each strong mode
    error_has: str = ""  # a fragment the error must contain, when the program ran
    # "repo", "home", "tmp", "etc" or "shm": __TARGET__ is a fresh name there, which must stay absent,
    # and __CANARY__ a file planted there, which must stay as it is
    target: str = ""
    checks: tuple[Callable[[Run], None], ...] = ()
    memory_mb: int | None = None  # None: the cascade's default


CE = "candidate_error"
CASES: dict[str, Case] = {
    # time
    "busy_loop": Case("timeout", "timeout", "wall-clock limit"),
    "sleep": Case("rejected", "timeout", "wall-clock limit"),
    "ignore_signals": Case("rejected", "timeout", "wall-clock limit"),
    # memory
    "mem_bytearray": Case("memory_limit", "memory_limit"),
    "mem_torch": Case("memory_limit", "memory_limit"),
    # It touches every byte it gets: ~3.4 GiB under the default 4 GiB (less torch), seconds of page
    # faults, many more on a busy machine. A quarter of the limit, ~0.5 GiB, ends it sooner and
    # still only by the memory limit (its smoke limit is ROOMY_S).
    "mem_incremental": Case("memory_limit", "memory_limit", memory_mb=1024),
    # A rule's own code runs in a process that may not open files for writing (the companion's filter),
    # so the file attacks below now end at their first write; the job's limits stay tested by the
    # programs that run as policies and by tests/sandbox/test_job_isolation.py.
    "shm_bomb": Case("rejected", CE, "not permitted", target="shm"),
    # processes
    "fork_bomb": Case("rejected", CE, "PermissionError"),
    "setsid_daemon": Case("rejected", CE, "PermissionError"),
    "os_system": Case("rejected", "ok", target="repo"),
    "torch_os_system": Case("rejected", "ok", target="home"),
    "subprocess_run": Case("rejected", CE, "PermissionError", target="repo"),
    # network
    "socket_loopback": Case("rejected", CE, checks=(server_saw_nothing,)),
    "socket_outside_tcp": Case("rejected", CE),
    "socket_outside_udp": Case("rejected", CE),
    # files
    "write_etc": Case("rejected", CE, target="etc"),
    "write_repo_root": Case("rejected", CE, target="repo"),
    "write_home": Case("rejected", CE, target="home"),
    "write_host_tmp": Case("rejected", ("ok", CE), target="tmp"),
    "overwrite_harness": Case("rejected", CE),
    "torch_save_repo": Case("rejected", CE, target="repo"),
    "scratch_big_file": Case("rejected", CE, "not permitted"),
    "fd_exhaustion": Case("rejected", CE, "Too many open files"),  # the proposer should learn why
    "print_100mb": Case(CE, CE, "File too large", checks=(output_small,)),
    # the rule's contract
    "nan_loss": Case(CE, CE, "not finite"),
    "inf_loss": Case(CE, CE, "not finite"),
    "shape_vector": Case(CE, CE, "expected a 0-d tensor"),
    "shape_2d": Case(CE, CE, "expected a 0-d tensor"),
    # ways out of the interpreter
    "system_exit": Case(CE, CE, "SystemExit"),
    "keyboard_interrupt": Case(CE, CE, "KeyboardInterrupt"),
    "os_exit_import": Case("rejected", CE),
    "forged_result": Case("rejected", CE),
    "probe_without_fingerprint": Case("rejected", CE, "not permitted"),
    "result_json_too_deep": Case("rejected", CE),
    "weights_wrong_seeds": Case("rejected", "ok", checks=(same_score_as_honest_a2c,)),  # its savez is not the trainer's
    "symlinked_results": Case("rejected", CE),
    "segfault_ctypes": Case("rejected", "killed", "SIGSEGV"),
    "deep_recursion": Case(CE, CE, "RecursionError"),
    "recursion_limit_raised": Case("rejected", "killed", "SIGSEGV"),
    # other processes
    "kill_parent": Case("rejected", CE, "PermissionError"),
    "kill_other": Case("rejected", CE, "PermissionError", checks=(victim_alive,)),
    "kill_all": Case("rejected", CE, "PermissionError"),
    "proc_fd_forge": Case("rejected", CE),
    "mount_unshare_ptrace": Case("rejected", CE, checks=(nothing_succeeded,)),
    # score and secrets
    "monkeypatch_score": Case("rejected", ("ok", CE), checks=(same_score_as_honest_a2c,)),
    "read_secrets": Case("rejected", CE, checks=(secret_nowhere,)),
    "thread_left_running": Case("rejected", "ok"),
    "deep_tree": Case("rejected", CE, "not permitted"),
    # the rule against the code that trains it (issue 15, breach 1): every route ends in the rule's own process
    "harness_swap_from_import": Case("rejected", "ok", checks=(scores_like_its_loss_alone,)),
    "harness_swap_generator_frame": Case("rejected", "ok", checks=(scores_like_its_loss_alone,)),
    "harness_swap_traceback_frame": Case("rejected", "ok", checks=(same_score_as_honest_a2c,)),
    "grad_fn_walk": Case("rejected", CE, "found no parameters"),
    "trainer_memory_write": Case("rejected", CE, "succeeded: []"),
    # what reaches the terminal (tests/cli/test_cli_terminal_safety.py checks the screen)
    "terminal_escapes": Case(CE, CE, "AssertionError"),
}
NAMES = sorted(CASES)
#: Run first, in the same mode; if it fails, the program is not run at all (it would harm the host).
PREFLIGHT = {"kill_all": "kill_other"}

HARNESS_BYTES = HARNESS.read_bytes()
HARNESS_SHA = hashlib.sha256(HARNESS_BYTES).hexdigest()


def evaluator(static: bool, memory_mb: int | None = None, smoke_s: float = ROOMY_S) -> RuleEvaluator:
    """An evaluator in the sandbox mode asked for now: without it, its config's default ("auto") would
    switch a strong mode the fixture chose back to auto."""
    memory = {"memory_mb": memory_mb} if memory_mb else {}
    return RuleEvaluator(CascadeConfig(suite=TINY_SUITE, hurdle=False, smoke_timeout_s=smoke_s,
                                       task_timeout_s=ROOMY_S, workers=1, static_check=static,
                                       sandbox=modes.requested_mode(), **memory))


def sandbox_mode() -> str:
    return sandbox.current_mode().name if hasattr(sandbox, "current_mode") else "default"


_honest: dict[str, EvalResult] = {}


def honest_a2c() -> EvalResult:
    """A2C's own evaluation in the mode now in force (once per mode)."""
    mode = sandbox_mode()
    if mode not in _honest:
        result = evaluator(static=True).evaluate(Program(rule_source("a2c"), name="a2c.py"))
        assert result.ok, result.error
        _honest[mode] = result
    return _honest[mode]


# -- the host, before and after ----------------------------------------------------------------------

def _scratch_dirs() -> set[str]:
    """This session's job scratch directories (conftest gives each test session its own root)."""
    root = os.environ["EVOSEARCH_SCRATCH"]
    patterns = [os.path.join(root, "evosearch-*"), os.path.join(root, "evosearch_worker-*", "evosearch-*")]
    return {p for pattern in patterns for p in glob.glob(pattern)}


def _undo(run: Run) -> None:
    """Remove what the program wrote where it aimed, and the canary; restore the harness."""
    if run.target is not None:
        for path in _named_after(run.target):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    if run.canary is not None:
        run.canary.remove()
    if hashlib.sha256(HARNESS.read_bytes()).hexdigest() != HARNESS_SHA:
        HARNESS.write_bytes(HARNESS_BYTES)


def _leftovers(wait_s: float = 20.0) -> list[int]:
    """Job processes still there after ``wait_s`` (a SIGKILLed group takes a moment to go)."""
    deadline = time.monotonic() + wait_s
    while (left := job_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _kill(pids: list[int]) -> None:
    for pid in pids:  # processes our own sandbox jobs started, by their id
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


# -- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def secret():
    """A fake API key in our environment and in a file in $HOME, set before any worker of this module starts."""
    value = f"sk-evosearch-test-{secrets.token_hex(16)}"
    old = os.environ.get(SECRET_VAR)
    os.environ[SECRET_VAR] = value
    SECRET_FILE.write_text(value + "\n")
    SECRET_FILE.chmod(0o600)
    try:
        yield value
    finally:
        SECRET_FILE.unlink(missing_ok=True)
        if old is None:
            os.environ.pop(SECRET_VAR, None)
        else:
            os.environ[SECRET_VAR] = old


@pytest.fixture(scope="module")
def reference(secret) -> str:
    """The fingerprint of A2C's probe, taken before any hostile program ran."""
    probe = run_job(ProbeJob(source=rule_source("a2c")), Limits(wall_s=ROOMY_S))
    assert probe.status == "ok", probe.error
    return probe.result["fingerprint"]


@pytest.fixture(scope="module", params=STRONG_MODES)
def strong_mode(request, secret, reference):
    configure = getattr(sandbox, "configure", None)
    unavailable = getattr(sandbox, "SandboxUnavailable", None)
    if configure is None or unavailable is None or not hasattr(sandbox, "current_mode"):
        pytest.skip("evosearch.sandbox has no configure(): the sandbox modes are not implemented yet")
    try:
        configure(request.param)
    except unavailable as err:
        pytest.skip(f"sandbox mode {request.param} is not available here: {err}")
    try:
        assert sandbox.current_mode().name == request.param
        yield request.param
    finally:
        configure("auto")


# -- the runs ---------------------------------------------------------------------------------------

def run_program(name: str, static: bool, reference: str, secret: str) -> list[str]:
    """Evaluate one hostile program and check everything; returns the problems found (empty: all good)."""
    case = CASES[name]
    expected = case.static_on if static else case.static_off
    expected = expected if isinstance(expected, tuple) else (expected,)
    run = Run(name, static, secret=secret)
    source = (HOSTILE / f"{name}.py").read_text()
    problems: list[str] = []
    timeout_expected = "timeout" in expected
    with contextlib.ExitStack() as stack:
        stack.callback(_undo, run)  # the host is put back even when a check fails
        if case.target:
            where = TARGET_DIRS[case.target]
            run.target = where / f"{MARK}-{name}-{secrets.token_hex(4)}"
            source = source.replace("__TARGET__", str(run.target))
            if "__CANARY__" in source:
                run.canary = Canary(where / f"{MARK}-canary-{name}-{secrets.token_hex(4)}")
                source = source.replace("__CANARY__", str(run.canary.path))
        if "__PORT__" in source:
            run.server = LoopbackServer()
            stack.callback(run.server.close)
            source = source.replace("__PORT__", str(run.server.port))
        if "__VICTIM__" in source:
            run.victim = subprocess.Popen(["sleep", "600"], start_new_session=True)
            stack.callback(run.victim.wait, 5)
            stack.callback(run.victim.kill)
            source = source.replace("__VICTIM__", str(run.victim.pid))
        source = source.replace("__SECRET_FILE__", str(SECRET_FILE))
        assert not re.search(r"__[A-Z]+(_[A-Z]+)*__", source), "a placeholder was left"
        if timeout_expected:  # a warm worker: the evaluation's wall time is then the job's, for the check below
            assert run_job(ProbeJob(source=rule_source("a2c")), Limits(wall_s=ROOMY_S)).status == "ok"
        scratch_before = _scratch_dirs()

        smoke_s = SMOKE_TIMEOUT_S if timeout_expected else ROOMY_S
        try:
            result = evaluator(static, case.memory_mb, smoke_s).evaluate(Program(source, name=f"{name}.py"))
        except Exception as err:  # noqa: BLE001 - evaluate() must never raise for a bad program: report it
            result = EvalResult(outcome="evaluate() raised", stage="", error=f"{type(err).__name__}: {err}")
        run.result = result
        print(f"{name} ({'static check on' if static else sandbox_mode()}): {result.outcome} at {result.stage} "
              f"in {result.wall_s:.1f} s: {result.error[:200]!r}")
        if result.outcome not in expected:
            problems.append(f"outcome {result.outcome!r} at {result.stage}, expected {' or '.join(expected)}: "
                            f"{result.error[:600]}")
        elif result.outcome != "rejected" and case.error_has not in result.error:
            problems.append(f"error lacks {case.error_has!r}: {result.error[:600]}")
        if timeout_expected and result.wall_s > SMOKE_TIMEOUT_S + TIMEOUT_SLACK_S:
            problems.append(f"took {result.wall_s:.1f} s to end, for a {SMOKE_TIMEOUT_S} s limit")
        checks = list(case.checks) + ([target_absent] if case.target else [])
        checks += [canary_intact] if run.canary is not None else []
        if run.server is not None:
            run.server.close()  # let it take any pending connection before counting
        for check in checks:
            try:
                check(run)
            except AssertionError as err:
                problems.append(f"{check.__name__}: {err}")

        left = _leftovers()
        if left:
            problems.append(f"processes left behind: {left}")
            _kill(left)
        left_scratch = _scratch_dirs() - scratch_before
        if left_scratch:
            problems.append(f"scratch directories left behind: {sorted(left_scratch)}")
        if hashlib.sha256(HARNESS.read_bytes()).hexdigest() != HARNESS_SHA:
            problems.append(f"{HARNESS} was modified")

        probe = run_job(ProbeJob(source=rule_source("a2c")), Limits(wall_s=ROOMY_S))
        if probe.status != "ok" or probe.result.get("fingerprint") != reference:
            problems.append(f"the next honest job failed or lied: {probe.status} {probe.error} {probe.result}")
    return problems


def _report(name: str, problems: list[str]) -> None:
    assert not problems, f"{name}:\n- " + "\n- ".join(problems)


def test_every_program_is_in_the_table():
    """Each hostile program is run by this table, or by a test module of its own kind (policies, job isolation)."""
    files = sorted(p.stem for p in HOSTILE.glob("*.py"))
    elsewhere = " ".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name)
    untested = [f for f in files if f not in CASES and f"{f}.py" not in elsewhere and f'"{f}"' not in elsewhere]
    assert not untested, f"hostile programs no test runs: {untested}"
    assert set(NAMES) <= set(files)
    assert len(NAMES) >= 33


@pytest.mark.parametrize("name", NAMES)
def test_static_check_verdict_matches_the_table(name):
    """The programs the table says are rejected are exactly those the static check rejects."""
    issues = static_check((HOSTILE / f"{name}.py").read_text())
    assert bool(issues) == (CASES[name].static_on == "rejected"), issues


@pytest.mark.parametrize("name", NAMES)
def test_with_static_check(name, secret, reference):
    _report(name, run_program(name, static=True, reference=reference, secret=secret))


@pytest.mark.parametrize("name", NAMES)
def test_without_static_check(name, strong_mode, secret, reference):
    preflight = PREFLIGHT.get(name)
    if preflight:
        problems = run_program(preflight, static=False, reference=reference, secret=secret)
        if problems:
            pytest.fail(f"not running {name}: {preflight} shows this mode does not contain it:\n- "
                        + "\n- ".join(problems))
    _report(name, run_program(name, static=False, reference=reference, secret=secret))


#: The rule against the code that trains it: in-process attacks, harmless to run where the OS layers
#: are weakest, which is where they must hold too (the companion is a process boundary in every mode).
AGAINST_THE_TRAINER = ("harness_swap_from_import", "harness_swap_generator_frame", "harness_swap_traceback_frame",
                       "grad_fn_walk", "trainer_memory_write")


@pytest.fixture(scope="module")
def weak_mode(secret, reference):
    try:
        sandbox.configure("rlimits")
    except sandbox.SandboxUnavailable as err:
        pytest.skip(f"sandbox mode rlimits is not available here: {err}")
    try:
        yield "rlimits"
    finally:
        sandbox.configure("auto")


@pytest.mark.parametrize("name", AGAINST_THE_TRAINER)
def test_the_rule_cannot_change_its_training_in_the_weak_mode_either(name, weak_mode, secret, reference):
    _report(name, run_program(name, static=False, reference=reference, secret=secret))
