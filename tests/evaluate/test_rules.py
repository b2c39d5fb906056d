"""The cascade: each bad input gets its outcome, stage and a readable message, within its limit."""

import time

import pytest
import torch
from conftest import TINY_SUITE, broken_machine_evaluator, rule_source

from evosearch.evaluate import CascadeConfig, RuleEvaluator
from evosearch.evaluate.result import StageFailure
from evosearch.program import Program

FAST = CascadeConfig(suite=TINY_SUITE, smoke_timeout_s=5, task_timeout_s=60, workers=1, bootstrap_reps=200)


def evaluate(source: str, **overrides):
    cfg = CascadeConfig(**{**FAST.__dict__, **overrides})
    return RuleEvaluator(cfg).evaluate(Program(source, name="candidate.py"))


def test_ppo_clip_passes_every_stage(no_leftovers):
    result = evaluate(rule_source("ppo_clip"))
    assert result.outcome == "ok" and result.stage == "full", result.error
    assert result.score is not None and result.ci[0] <= result.score <= result.ci[1]
    task = result.tasks["CartPole-v1"]
    assert len(task.returns) == len(task.normalized) == 2
    assert result.fingerprint and result.hurdle_score is not None


BAD_INPUTS = [
    ("syntax error", "def loss(b)\n    return b.logp.mean()\n", "rejected", "static", "syntax error"),
    ("forbidden import", "import os\ndef loss(b):\n    return b.logp.mean()\n", "rejected", "static",
     "import of 'os' is not allowed"),
    ("exception", "def loss(b):\n    return helper(b)\n", "candidate_error", "smoke",
     "NameError: name 'helper' is not defined"),
    ("nan loss", "def loss(b):\n    return (b.logp + b.value).mean() * float('nan')\n", "candidate_error",
     "smoke", "not finite"),
    ("inf loss", "def loss(b):\n    return (b.logp + b.value).mean() + float('inf')\n", "candidate_error",
     "smoke", "not finite"),
    ("wrong shape", "def loss(b):\n    return b.logp + b.value\n", "candidate_error", "smoke",
     "expected a 0-d tensor"),
    ("infinite loop", "def loss(b):\n    while True:\n        pass\n", "timeout", "smoke", "wall-clock limit"),
    ("memory bomb", "def loss(b):\n    hog = [bytearray(1 << 26) for _ in range(10_000)]\n    return b.logp.mean()\n",
     "memory_limit", "smoke", "memory limit"),
    ("torch memory bomb", "import torch\ndef loss(b):\n    x = torch.ones(1 << 36)\n    return b.logp.mean()\n",
     "memory_limit", "smoke", "memory limit"),
]


@pytest.mark.parametrize(("what", "source", "outcome", "stage", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_its_outcome_and_message(what, source, outcome, stage, message, no_leftovers):
    start = time.monotonic()
    result = evaluate(source, memory_mb=1536)  # torch needs ~0.9 GiB of it; a bomb hits the rest fast
    assert (result.outcome, result.stage) == (outcome, stage), result.error
    assert message in result.error
    assert result.score is None
    assert time.monotonic() - start < FAST.smoke_timeout_s + 10


def test_exception_carries_the_traceback_tail():
    result = evaluate("def helper(b):\n    return 1 / 0\n\ndef loss(b):\n    return helper(b)\n")
    assert result.outcome == "candidate_error"
    assert "ZeroDivisionError" in result.error
    assert 'candidate.py", line 2, in helper' in result.output_tail


def test_nan_during_training_is_caught_at_the_stage_it_happens():
    # Finite on the probe batch, but it poisons the weights once training starts.
    source = rule_source("a2c").replace("return pg_loss", "return 1e30 * (b.value ** 8).mean() + pg_loss")
    result = evaluate(source, hurdle=False)
    assert result.outcome == "candidate_error" and result.stage == "full", result.error
    assert "non-finite" in result.error


def test_hurdle_rejects_a_rule_below_threshold():
    result = evaluate(rule_source("ppo_clip"), hurdle_threshold=10.0)
    assert (result.outcome, result.stage) == ("rejected", "hurdle")
    assert "below the threshold 10.000" in result.error
    assert result.fingerprint  # the smoke stage still recorded it


def test_a_job_that_exits_the_process_is_a_candidate_error():
    result = evaluate("import math\ndef loss(b):\n    raise SystemExit(0)\n")
    assert result.outcome == "candidate_error" and "SystemExit" in result.error


def test_auc_fitness_is_the_iqm_of_per_seed_areas():
    result = evaluate(rule_source("ppo_clip"), fitness="auc", hurdle=False)
    assert result.ok, result.error
    task = result.tasks["CartPole-v1"]
    assert len(task.auc_per_seed) == 2 and task.auc == pytest.approx(sum(task.auc_per_seed) / 2)
    assert result.ci[0] <= result.score <= result.ci[1]


def test_forged_learning_curves_cannot_crash_the_evaluator():
    evaluator = RuleEvaluator(CascadeConfig(**{**FAST.__dict__}))
    forged = {"curve_steps": "lots", "curves": [["a", None]]}
    task = evaluator._task_result("CartPole-v1", [100.0, 200.0], forged, 1.0)
    assert task.curves == [] and task.auc_per_seed == task.normalized


# -- blaming the right party: the harness or the machine failing is not the program's fault ------------


def test_a_failure_outside_the_rules_code_is_an_infra_error_not_the_candidates(no_leftovers):
    result = broken_machine_evaluator().evaluate(Program(rule_source("ppo_clip"), name="ppo_clip.py"))
    assert (result.outcome, result.stage) == ("infra_error", "full"), result.error
    assert "outside the program's code" in result.error and "NoSuchEnvironment-v0" in result.error
    assert result.fingerprint  # the smoke stage, which ran the rule, succeeded


def test_cuda_that_will_not_start_in_the_job_is_an_infra_error(no_leftovers):
    """A job asked to train on a GPU this machine (or this sandbox) cannot start: the harness fails, not PPO."""
    from evosearch.evaluate.rules import train_and_score
    from evosearch.sandbox import Limits

    if torch.cuda.is_available():
        pytest.skip("CUDA starts here")
    task = RuleEvaluator(FAST).suite.tasks[0]
    with pytest.raises(StageFailure) as failed:
        train_and_score(Program(rule_source("ppo_clip"), name="ppo_clip.py"), task, [0], Limits(wall_s=60), 2,
                        device="cuda")
    assert failed.value.outcome == "infra_error", failed.value.message
    assert "outside the program's code" in failed.value.message


def test_the_rules_own_exception_during_training_is_still_its_own():
    # Fine on the probe batch (96 samples); raises on the first training minibatch of another size.
    source = rule_source("a2c").replace("    return pg_loss", "    if b.logp.shape[-1] != 96:\n"
                                        "        raise ValueError('only on training batches')\n    return pg_loss")
    result = evaluate(source, hurdle=False)
    assert (result.outcome, result.stage) == ("candidate_error", "full"), (result.outcome, result.error)
    assert "only on training batches" in result.error


# -- confirmation: the same program measured again on seeds the search never used ----------------------


def test_a_failed_evaluation_is_not_confirmed():
    evaluator = RuleEvaluator(FAST)
    program = Program("def loss(b):\n    return helper(b)\n", name="broken.py")
    result = evaluator.confirm(program, evaluator.evaluate(program))
    assert result.outcome == "candidate_error" and result.confirmed == {}
