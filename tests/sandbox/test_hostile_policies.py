"""Hostile policies against the referee, through the real PolicyEvaluator in each sandbox mode (issue 15).

Each program in ``hostile/policy_*.py`` attacks the referee's socket the way someone who has read
:mod:`evosearch.evaluate.referee` would (breach 3: the evaluator hung past every limit; breach 5:
answer headers that crashed the host). Each runs with the static check off, so that the referee
and the sandbox are what is tested (with it on, every one is rejected before it runs, which a test
here checks too), in every mode this machine offers. After each run:

1. the outcome and its reason are the expected ones, and the run ended well before the job's
   wall-clock limit (a hung referee would run to it, or past it);
2. the host is unchanged: the same kinds of descriptors open as before (none the policy passed,
   no pidfd, no socket left), no job process left, no scratch directory left;
3. an honest policy evaluated right after scores exactly as it did before any hostile one ran.

Limits: the answer timeout is 2 s (what ends the stalling programs) and the wall-clock limit 60 s,
which none comes near; "ended promptly" is a bound of 20 s, ten times what the slowest needs.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import glob
import os
import time
from pathlib import Path

import pytest
from conftest import ROOT, job_processes

from evosearch import sandbox
from evosearch.envs.suites import Suite, load_suite
from evosearch.evaluate import CascadeConfig, EvalResult, PolicyEvaluator
from evosearch.program import Program, static_check
from evosearch.sandbox import modes

HOSTILE = Path(__file__).parent / "hostile"
SUITE = str(ROOT / "tests" / "data" / "policy_tiny.yaml")
HONEST = ROOT / "programs" / "policies" / "cartpole.py"
MODES = ("bubblewrap", "namespaces", "rlimits")
ACT_TIMEOUT_S = 2.0
WALL_S = 60.0
PROMPT_S = 20.0
CE = "candidate_error"


@dataclasses.dataclass(frozen=True)
class Case:
    """What one program must get: its outcome, and a reason holding any of ``reasons``."""

    outcome: str
    reasons: tuple[str, ...] = ()
    # Pendulum with 100 environments: a batch of observations large enough (1.2 kB) that the ones a
    # policy leaves unread fill the socket within an episode (the tiny suite's 6 never do).
    wide: bool = False
    wall_s: float = WALL_S
    honest: bool = False  # it plays CartPole honestly apart from its attack: its returns are the baseline's


CASES: dict[str, Case] = {
    # breach 3 as reported: a socket in flight outlives the job. The referee sees the process end (or
    # reads the descriptor first, if it gets there before the process is gone).
    "policy_fd_passing": Case(CE, ("ended during the episode", "file descriptor"), wide=True),
    "policy_fd_with_answer": Case(CE, ("passed 252 file descriptor(s)",)),
    "policy_hangup_then_sleep": Case(CE, ("closed its connection",)),
    "policy_presend_stall": Case("timeout", ("did not read its observations within 2 s",), wide=True),
    "policy_partial_header": Case("timeout", ("did not answer in time (2 s)",)),
    "policy_trickle": Case("timeout", ("did not answer in time (2 s)",)),
    "policy_huge_length": Case(CE, ("a header of 4294967295 bytes",)),
    # breach 5: ValueError and OverflowError in the host before
    "policy_header_shape_overflow": Case(CE, ("shape [4294967296, 4294967296]",)),
    "policy_header_infinity": Case(CE, ("Infinity is not a JSON number",)),
    "policy_second_connection": Case("ok", honest=True),
    # breach 4 where candidate code can still write: cleanup without recursion, then an honest score
    "policy_deep_tree": Case("ok", honest=True),
    # weaker finding: policies had the rules' allow-list; with every check off, sys reaches nothing
    "policy_torch_sys": Case("ok", honest=True),
    "policy_fake_result_then_sleep": Case(CE, ("wrote its result without connecting",)),
    # every answer on time (0.5 s each), the episodes not: the job's wall-clock limit (3 s here) ends it
    "policy_slow_steps": Case("timeout", ("wall-clock limit",), wall_s=3.0),
}
NAMES = sorted(CASES)


def wide_suite() -> Suite:
    tiny = load_suite(SUITE)
    pendulum = tuple(t for t in tiny.tasks if t.env_id == "Pendulum-v1")
    return dataclasses.replace(tiny, tasks=pendulum, seeds=5, eval_episodes=20)


def evaluator(case: Case | None = None) -> PolicyEvaluator:
    """An evaluator in the mode the fixture chose (its config's "auto" would switch back), static check off."""
    case = case or Case("ok")
    config = CascadeConfig(suite=SUITE, smoke_timeout_s=ACT_TIMEOUT_S, task_timeout_s=case.wall_s,
                           static_check=False, sandbox=modes.requested_mode())
    return PolicyEvaluator(config, wide_suite() if case.wide else None)


def evaluate(case: Case, program: Program) -> EvalResult:
    try:
        return evaluator(case).evaluate(program)
    except Exception as err:  # noqa: BLE001 - evaluate() must never raise for a bad program: report it
        return EvalResult(outcome="evaluate() raised", stage="", error=f"{type(err).__name__}: {err}")


# -- the host, before and after ----------------------------------------------------------------------

def descriptor_kinds() -> collections.Counter:
    """This process's open descriptors by kind (socket, pipe, pidfd, file): a passed one left open shows.

    By kind, not by number: a worker the pool replaces gets new pipes with other numbers.
    """
    kinds = collections.Counter()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            kinds[target.split(":[")[0] if ":[" in target else "file " + target] += 1
    return kinds


def scratch_dirs() -> set[str]:
    root = os.environ["EVOSEARCH_SCRATCH"]
    patterns = [os.path.join(root, "evosearch-*"), os.path.join(root, "evosearch_worker-*", "evosearch-*")]
    return {p for pattern in patterns for p in glob.glob(pattern)}


def leftovers(wait_s: float = 20.0) -> list[int]:
    """Job processes still there after ``wait_s`` (a SIGKILLed group takes a moment to go)."""
    deadline = time.monotonic() + wait_s
    while (left := job_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The honest policy's evaluation in one mode, and the host's descriptors right after it."""

    returns: list[float]
    fingerprint: str
    descriptors: collections.Counter


def honest_run() -> EvalResult:
    result = evaluator().evaluate(Program.from_file(HONEST, kind="policy"))
    assert result.outcome == "ok", result.error
    return result


# -- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=MODES)
def baseline(request) -> Baseline:
    """Each mode the machine offers in turn, with the honest policy's evaluation there before any attack."""
    try:
        sandbox.configure(request.param)
    except sandbox.SandboxUnavailable as err:
        pytest.skip(f"sandbox mode {request.param} is not available here: {err}")
    try:
        result = honest_run()
        yield Baseline(result.tasks["CartPole-v1"].returns, result.fingerprint, descriptor_kinds())
    finally:
        sandbox.configure("auto")


# -- the runs ---------------------------------------------------------------------------------------

def test_every_hostile_policy_is_in_the_table():
    assert sorted(p.stem for p in HOSTILE.glob("policy_*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_the_static_check_rejects_it_first(name):
    """In a campaign each of these stops at the static check; the runs below are for a bypass."""
    assert static_check((HOSTILE / f"{name}.py").read_text(), "policy")


def check_outcome(case: Case, result: EvalResult) -> list[str]:
    problems = []
    if result.outcome != case.outcome:
        problems.append(f"outcome {result.outcome!r}, expected {case.outcome!r}: {result.error[:600]}")
    elif case.reasons and not any(reason in result.error for reason in case.reasons):
        problems.append(f"error names none of {case.reasons}: {result.error[:600]}")
    if result.wall_s > PROMPT_S:
        problems.append(f"took {result.wall_s:.1f} s to end (job wall-clock limit {case.wall_s:g} s)")
    return problems


def check_host(baseline: Baseline, scratch_before: set[str]) -> list[str]:
    """What the run left behind; the honest policy then runs, so its worker is back in the pool."""
    problems = []
    left = leftovers()
    if left:
        problems.append(f"job processes left behind: {left}")
    left_scratch = scratch_dirs() - scratch_before
    if left_scratch:
        problems.append(f"scratch directories left behind: {sorted(left_scratch)}")
    honest = honest_run()
    if (honest.tasks["CartPole-v1"].returns, honest.fingerprint) != (baseline.returns, baseline.fingerprint):
        problems.append(f"the honest policy now scores {honest.tasks['CartPole-v1'].returns} "
                        f"({honest.fingerprint}), before {baseline.returns} ({baseline.fingerprint})")
    now = descriptor_kinds()
    if now != baseline.descriptors:
        problems.append(f"the host's descriptors changed: now {dict(now - baseline.descriptors)} more, "
                        f"{dict(baseline.descriptors - now)} fewer")
    return problems


@pytest.mark.parametrize("name", NAMES)
def test_hostile_policy(name, baseline):
    case = CASES[name]
    scratch_before = scratch_dirs()
    result = evaluate(case, Program((HOSTILE / f"{name}.py").read_text(), kind="policy", name=f"{name}.py"))
    print(f"{name} ({sandbox.current_mode().name}): {result.outcome} in {result.wall_s:.1f} s: {result.error[:200]!r}")
    problems = check_outcome(case, result)
    if case.honest and result.outcome == "ok" and result.tasks["CartPole-v1"].returns != baseline.returns:
        problems.append(f"returns {result.tasks['CartPole-v1'].returns}, honest {baseline.returns}")
    problems += check_host(baseline, scratch_before)
    assert not problems, f"{name}:\n- " + "\n- ".join(problems)


def test_a_policy_that_fails_to_load_reports_its_own_error_promptly(baseline):
    """It never connects; the referee stops waiting when the job has ended (before: the 30 s connect timeout)."""
    source = 'import numpy as np\n\nENV_ID = "CartPole-v1"\nSCALE = 1 // 0\n\n\ndef act(obs):\n    return obs\n'
    result = evaluate(Case(CE), Program(source, kind="policy", name="fails_to_load.py"))
    assert result.outcome == CE and "ZeroDivisionError" in result.error, (result.outcome, result.error)
    assert result.wall_s < PROMPT_S
