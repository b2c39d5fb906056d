"""A rule's code runs in its job's companion: what the companion can do, and what the trainer gets back.

The companion (``evosearch/sandbox/companion.py``) is where a rule's module, ``loss`` and
``advantages`` run; the job that trains never runs them. These tests check the boundary from
both sides, in every sandbox mode this machine offers: the companion can reach nothing of its
job (the self-check ``evosearch doctor`` shows), and the trainer gets the rule's behaviour
exactly (same fingerprints as the rule loaded in-process) or the rule's own error, named.
"""

from __future__ import annotations

import pytest
from conftest import BASELINES, rule_source

from evosearch import sandbox
from evosearch.evaluate.jobs import ProbeJob
from evosearch.sandbox import Limits, run_job
from evosearch.sandbox.selfcheck import SelfCheck
from evosearch.train.probe import probe
from evosearch.train.rule import load_rule

MODES = ("bubblewrap", "namespaces", "rlimits")
COMPANION = "its companion (where a rule's code runs)"


@pytest.fixture(scope="module", params=MODES)
def mode(request):
    try:
        sandbox.configure(request.param)
    except sandbox.SandboxUnavailable as err:
        pytest.skip(f"sandbox mode {request.param} is not available here: {err}")
    try:
        yield request.param
    finally:
        sandbox.configure("auto")


def _probe(source: str, minimal_builtins: bool = True):
    return run_job(ProbeJob(source=source, minimal_builtins=minimal_builtins), Limits(wall_s=120))


def test_the_companion_can_reach_nothing_of_its_job(mode):
    job = run_job(SelfCheck(), Limits(wall_s=60))
    assert job.status == "ok", job.error
    view = job.result[COMPANION]
    if not sandbox.current_mode().seccomp:
        pytest.skip("no libseccomp here: the companion is only as confined as its job")
    assert set(view) == {"write a file", "fork a process", "open a socket", "signal its job",
                         "open its job's memory"}
    assert all(v.startswith("blocked") for v in view.values()), view


@pytest.mark.parametrize("name", BASELINES)
def test_the_trainer_gets_the_rules_behaviour_exactly(name, mode):
    """The probe job's fingerprint (the rule in its companion) is the rule's own, loaded in-process."""
    job = _probe(rule_source(name))
    assert job.status == "ok", job.error
    assert job.result["fingerprint"] == probe(load_rule(rule_source(name)))["fingerprint"]


@pytest.mark.parametrize(("source", "message"), [
    ("def loss(b):\n    return b.logp.mean() / 0 + 1 // 0\n", "loss(b) raised ZeroDivisionError"),
    ("def loss(b):\n    return b.logp\n", "expected a 0-d tensor"),
    ("import os\ndef loss(b):\n    return b.logp.mean()\n", "loading the rule raised ImportError"),
    ("def advantages(r, v, d, last, gamma, lam):\n    return r[:1]\n"
     "def loss(b):\n    return -(b.logp * b.adv).mean() + ((b.value - b.ret) ** 2).mean()\n",
     "advantages(...) returned"),
])
def test_the_rules_errors_come_back_named(source, message, mode):
    job = _probe(source)
    assert job.status == "error"
    assert message in job.error["message"], job.error


def test_a_rule_that_ends_its_own_process_is_its_error(mode):
    source = "import os\ndef loss(b):\n    os._exit(0)\n"
    job = _probe(source, minimal_builtins=False)
    assert job.status == "error"
    assert "the rule's process ended" in job.error["message"], job.error


def test_a_companion_killed_by_a_signal_ends_its_job_the_same_way(mode):
    """A companion killed (its CPU limit, the OOM killer) takes the job with it, so the outcome is the kill's."""
    source = "import os, signal\ndef loss(b):\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
    job = _probe(source, minimal_builtins=False)
    assert job.status == "killed", (job.status, job.error)
    assert "SIGSEGV" in job.error["message"]
