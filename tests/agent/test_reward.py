"""The proposer's reward: each outcome of an edit, measured by the real cascade in the real sandbox.

Nothing here is mocked: edits are applied by the campaign's applier and children are trained
and scored by ``RuleEvaluator`` on the tiny suite. ``Counting`` only wraps the real evaluator
to count its calls and keep its results.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SUITE, broken_machine_evaluator, rule_source

from evosearch.agent.reward import (
    KINDS,
    Edit,
    RewardConfig,
    RewardModule,
    build_evaluator,
    completion_text,
    sigmoid,
)
from evosearch.evaluate import EvalResult
from evosearch.program import Program

FAST = RewardConfig(suite=TINY_SUITE, smoke_timeout_s=5, task_timeout_s=60)
REINFORCE = rule_source("reinforce")
PG_LINE = "    pg_loss = -(b.logp * b.adv).mean()\n"
FLIPPED_LINE = "    pg_loss = (b.logp * b.adv).mean()\n"
FLIPPED = REINFORCE.replace(PG_LINE, FLIPPED_LINE)  # gradient ascent on the loss: learns to fail


def search_replace(search: str, replace: str) -> str:
    """An answer in the proposer's SEARCH/REPLACE format, with a line of prose as models write."""
    return f"Here is my change.\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


FIX_SIGN = search_replace(FLIPPED_LINE, PG_LINE)
FLIP_SIGN = search_replace(PG_LINE, FLIPPED_LINE)
# Halving the value loss's weight: a new behaviour for the probe, and trains in seconds.
NEW_COEF = search_replace("VF_COEF = 0.5\n", "VF_COEF = 0.25\n")
# A comment: a new source, the parent's behaviour.
COSMETIC = search_replace(PG_LINE, "    # the policy-gradient term\n" + PG_LINE)


class Counting:
    """The real evaluator, counting its calls and keeping what it returned."""

    def __init__(self, inner) -> None:
        self.inner, self.results = inner, []

    @property
    def suite(self):
        return self.inner.suite

    @property
    def calls(self) -> int:
        return len(self.results)

    def evaluate(self, program: Program, skip_if=None) -> EvalResult:
        result = self.inner.evaluate(program, skip_if=skip_if)
        self.results.append(result)
        return result


def module(config: RewardConfig = FAST, **kwargs) -> tuple[RewardModule, Counting]:
    evaluator = Counting(build_evaluator(config))
    return RewardModule(config, evaluator=evaluator, **kwargs), evaluator


# -- nothing runs: answers that never become a child --------------------------------------------------


FORMAT_FAILURES = [
    ("prose", "I would lower the learning rate and add an entropy bonus.", "unparseable", "no code found"),
    ("unclosed block", "<<<<<<< SEARCH\n" + PG_LINE + "=======\n", "unparseable", "complete block"),
    ("no match", search_replace("    pg_loss = torch.zeros(())\n", PG_LINE), "no_apply", "is not in the block"),
    ("identical", search_replace(PG_LINE, PG_LINE), "no_apply", "changes nothing"),
    ("outside the block", search_replace("import torch\n", "import torch\nimport os\n"), "no_apply",
     "outside the EVOLVE-BLOCK"),
]


@pytest.mark.parametrize(("what", "answer", "kind", "message"), FORMAT_FAILURES, ids=[f[0] for f in FORMAT_FAILURES])
def test_an_answer_that_makes_no_child_is_failed_and_runs_nothing(what, answer, kind, message):
    reward, evaluator = module()
    outcome = reward.score_edit(REINFORCE, answer, parent_score=0.3)
    assert (outcome.reward, outcome.kind) == (FAST.failed, kind)
    assert message in outcome.error
    assert evaluator.calls == 0  # not even the parent: there is nothing to compare it with
    assert reward.stats()[kind] == 1


def test_an_attack_the_static_check_refuses_is_rejected_and_never_runs(tmp_path):
    target = tmp_path / "pwned"
    attack = search_replace(PG_LINE, f"    import os\n    os.system('touch {target}')\n" + PG_LINE)
    reward, evaluator = module()
    outcome = reward.score_edit(REINFORCE, attack)
    assert (outcome.reward, outcome.kind) == (0.0, "rejected")
    assert "import of 'os' is not allowed" in outcome.error
    assert evaluator.calls == 0 and not target.exists()


# -- the program runs: contained, and failed ------------------------------------------------------------


RUNTIME_ATTACKS = [
    ("memory bomb", "    hog = [bytearray(1 << 26) for _ in range(10_000)]\n", "memory_limit"),
    ("busy loop", "    while True:\n        pass\n", "timeout"),
]


@pytest.mark.slow  # the sandbox's own hostile suite runs these attacks on every candidate in the default run
@pytest.mark.parametrize(("what", "inserted", "outcome"), RUNTIME_ATTACKS, ids=[a[0] for a in RUNTIME_ATTACKS])
def test_a_program_that_misbehaves_at_run_time_is_contained_and_failed(what, inserted, outcome, no_leftovers):
    # Passes the static check; the sandbox's limits stop it (torch takes ~0.9 GiB of the 1.5).
    config = RewardConfig(suite=TINY_SUITE, smoke_timeout_s=5, task_timeout_s=60, memory_mb=1536)
    reward, evaluator = module(config)
    result = reward.score_edit(REINFORCE, search_replace(PG_LINE, inserted + PG_LINE))
    assert (result.reward, result.kind, result.outcome) == (0.0, "candidate_error", outcome), result.error
    assert evaluator.results[-1].stage == "smoke"  # the probe caught it: nothing trained with it
    # The worker is fine afterwards: the honest parent, measured first, is measured the same again.
    honest = build_evaluator(config).evaluate(Program(REINFORCE))
    assert honest.ok and honest.fingerprint == evaluator.results[0].fingerprint


# -- evaluated: the reward follows the score ------------------------------------------------------------


@pytest.fixture(scope="module")
def longer_tiny(tmp_path_factory) -> str:
    """The tiny suite with CartPole trained 4,096 steps instead of 2,048: at 2,048 REINFORCE and its
    sign-flipped twin differ by 0.007 normalised, at 4,096 by 0.035 (still ~3 s a candidate)."""
    raw = yaml.safe_load(Path(TINY_SUITE).read_text())
    raw["tasks"][0]["total_steps"] = 4096
    path = tmp_path_factory.mktemp("suite") / "tiny4k.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_a_better_edit_earns_more_than_half_and_a_harmful_one_less(longer_tiny, no_leftovers):
    config = RewardConfig(suite=longer_tiny, stages="full", smoke_timeout_s=5, task_timeout_s=60)
    # Two modules: to one that measured FLIPPED as a parent, FLIPPED as a child is a known behaviour.
    (improving, first), (harming, second) = module(config), module(config)
    # The stored score (another suite) is ignored when the parent can be measured here.
    better = improving.score_edit(FLIPPED, FIX_SIGN, parent_score=5.0)
    worse = harming.score_edit(REINFORCE, FLIP_SIGN, parent_score=-5.0)
    assert better.kind == worse.kind == "evaluated", (better.error, worse.error)
    assert better.score > better.parent_score and better.reward > 0.5
    assert worse.score < worse.parent_score and worse.reward < 0.5
    # Like for like: the fixed child is REINFORCE itself, so the two measurements mirror each other.
    assert better.score == worse.parent_score and worse.score == better.parent_score
    assert better.reward == pytest.approx(sigmoid(config.alpha * (better.score - better.parent_score)))
    assert better.reward + worse.reward == pytest.approx(1.0)
    assert first.calls == second.calls == 2  # the parent and the child


def test_a_child_that_is_a_known_parent_is_a_duplicate_without_a_new_evaluation():
    reward, evaluator = module()
    reward.score_edit(FLIPPED, FIX_SIGN)  # measures FLIPPED (parent) and REINFORCE (child)
    back = reward.score_edit(REINFORCE, FLIP_SIGN)  # REINFORCE's parent and child are both known now
    assert (back.kind, back.reward, back.cached) == ("duplicate", 0.1, True)
    assert evaluator.calls == 2


def test_the_hurdle_stage_trains_only_the_suites_hurdle_task():
    reward, evaluator = module()  # stages="hurdle"
    hurdle = evaluator.suite.hurdle
    assert evaluator.suite.tasks == (hurdle,) and evaluator.suite.seeds == 1
    outcome = reward.score_edit(REINFORCE, NEW_COEF)
    assert outcome.kind == "evaluated" and 0.0 < outcome.reward < 1.0, outcome.error
    for result in evaluator.results:
        assert list(result.tasks) == [hurdle.env_id] and len(result.tasks[hurdle.env_id].returns) == 1
        assert result.hurdle_score is None  # the hurdle stage itself did not run: no threshold to fail


def test_a_parent_that_fails_here_falls_back_to_the_stored_score_then_to_neutral():
    broken = REINFORCE.replace("    return pg_loss + VF_COEF * v_loss\n", "    return pg_loss + VF_COEF * v_los\n")
    fix = search_replace("    return pg_loss + VF_COEF * v_los\n", "    return pg_loss + VF_COEF * v_loss\n")
    reward, evaluator = module()
    fallback = reward.score_edit(broken, fix, parent_score=-0.5)
    assert fallback.kind == "evaluated" and fallback.parent_score == -0.5
    assert fallback.reward == pytest.approx(sigmoid(10 * (fallback.score + 0.5)))
    neutral = reward.score_edit(broken, fix, parent_score=None)
    assert (neutral.reward, neutral.parent_score, neutral.cached) == (0.5, None, True)
    assert evaluator.calls == 2  # the broken parent (it fails at the probe) and the child, each once


# -- twins: a known behaviour is a duplicate ---------------------------------------------------------------


def test_a_child_that_behaves_like_its_parent_is_a_duplicate_stopped_at_the_probe():
    reward, evaluator = module()
    outcome = reward.score_edit(REINFORCE, COSMETIC)
    assert (outcome.reward, outcome.kind) == (FAST.duplicate, "duplicate")
    assert outcome.fingerprint == evaluator.results[0].fingerprint  # the parent's
    assert evaluator.results[1].outcome == "duplicate" and evaluator.results[1].stage == "smoke"
    assert reward.stats()["twins_stopped"] == 1


def test_a_behaviour_known_from_the_archive_is_a_duplicate():
    a2c = rule_source("a2c")
    known = build_evaluator(FAST).fingerprint(Program(a2c))
    block = a2c.split("# EVOLVE-BLOCK-START\n")[1].split("# EVOLVE-BLOCK-END")[0]
    rewrite = f"A2C's loss instead:\n```python\n{block}```\n"
    reward, evaluator = module(known_fingerprints={known})
    outcome = reward.score_edit(REINFORCE, rewrite)
    assert (outcome.kind, outcome.reward, outcome.fingerprint) == ("duplicate", 0.1, known)
    assert evaluator.results[-1].stage == "smoke"  # not trained
    # Without the archive's fingerprints the same edit is new, and trained.
    fresh, _ = module()
    assert fresh.score_edit(REINFORCE, rewrite).kind == "evaluated"


def test_a_twin_of_a_program_that_failed_here_is_failed():
    a2c = rule_source("a2c")
    # Finite on the probe batch, but it poisons the weights once training starts (tests/evaluate/test_rules.py).
    poison = "    return 1e30 * (b.value ** 8).mean() + pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss\n"
    line = "    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss\n"
    reward, _ = module()
    first = reward.score_edit(a2c, search_replace(line, poison))
    assert (first.kind, first.outcome, first.reward) == ("candidate_error", "candidate_error", 0.0), first.error
    twin = reward.score_edit(a2c, search_replace(line, "    # scaled\n" + poison))
    assert (twin.kind, twin.reward) == ("duplicate", 0.0)
    assert "failed here" in twin.error and "non-finite" in twin.error


# -- the cache -------------------------------------------------------------------------------------------


def test_a_repeated_completion_costs_nothing_and_gets_the_same_reward():
    reward, evaluator = module()
    first = reward.score_edit(REINFORCE, NEW_COEF)
    calls = evaluator.calls
    assert calls == 2 and not first.cached  # the parent, the child
    again = reward.score_edit(REINFORCE, NEW_COEF)
    # The same child written as a full rewrite instead of SEARCH/REPLACE: the same source, the same measurement.
    block = REINFORCE.split("# EVOLVE-BLOCK-START\n")[1].split("# EVOLVE-BLOCK-END")[0]
    rewrite = reward.score_edit(REINFORCE, "```python\n" + block.replace("VF_COEF = 0.5", "VF_COEF = 0.25") + "```\n")
    assert evaluator.calls == calls
    for outcome in (again, rewrite):
        assert outcome.cached and (outcome.reward, outcome.score, outcome.kind) == (first.reward, first.score,
                                                                                     first.kind)
    # A new source with the child's behaviour: stopped at the probe, a duplicate.
    twin = reward.score_edit(REINFORCE, search_replace("VF_COEF = 0.5\n", "VF_COEF = 0.125 * 2\n"))
    assert twin.kind == "duplicate" and evaluator.calls == calls + 1 and evaluator.results[-1].stage == "smoke"
    stats = reward.stats()
    assert (stats["cache_hits"], stats["evaluations"], stats["parent_evaluations"]) == (5, 2, 1)


def test_a_machine_failure_is_infra_failed_counted_apart_and_not_cached():
    evaluator = Counting(broken_machine_evaluator())  # the real evaluator; its task's environment cannot be built
    reward = RewardModule(FAST, evaluator=evaluator)
    outcome = reward.score_edit(REINFORCE, NEW_COEF, parent_score=0.2)
    assert (outcome.kind, outcome.reward, outcome.outcome) == ("infra", FAST.failed, "infra_error")
    assert "NoSuchEnvironment-v0" in outcome.error
    assert evaluator.calls == 2
    again = reward.score_edit(REINFORCE, NEW_COEF, parent_score=0.2)
    assert again.kind == "infra" and not again.cached and evaluator.calls == 4  # measured again, both
    stats = reward.stats()
    assert (stats["infra"], stats["candidate_error"], stats["edits"]) == (2, 0, 2)


# -- the smoke stage: the probe alone ---------------------------------------------------------------------------


def test_the_smoke_stage_rewards_a_valid_new_behaviour_with_a_neutral_half_and_trains_nothing():
    config = RewardConfig(suite=TINY_SUITE, stages="smoke", smoke_timeout_s=5)
    reward, evaluator = module(config)
    new = reward.score_edit(REINFORCE, NEW_COEF)
    twin = reward.score_edit(REINFORCE, COSMETIC)
    broken = reward.score_edit(REINFORCE, search_replace(PG_LINE, "    pg_loss = helper(b)\n"))
    assert (new.kind, new.reward, new.score) == ("evaluated", 0.5, None)
    assert (twin.kind, twin.reward) == ("duplicate", 0.1)
    assert (broken.kind, broken.reward) == ("candidate_error", 0.0) and "helper" in broken.error
    assert all(r.stage == "smoke" and not r.tasks for r in evaluator.results)


# -- TRL's reward-function interface ---------------------------------------------------------------------------


def test_the_trl_call_takes_strings_conversations_and_extra_columns():
    reward, evaluator = module()
    assert reward.__name__ == "evosearch_reward"
    logged: dict[str, float] = {}
    prompts = [[{"role": "user", "content": "improve this rule"}]] * 4
    completions = [
        NEW_COEF,
        [{"role": "assistant", "content": NEW_COEF}],  # the same answer, conversational
        [{"role": "assistant", "content": [{"type": "text", "text": COSMETIC}]}],
        "no code today",
    ]
    rewards = reward(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * 4,
                     parent_source=[REINFORCE] * 4, parent_score=[0.3, 0.3, None, math.nan],
                     kind=["rule"] * 4, suite=["quick"] * 4, meta=[{}] * 4, trainer_state=object(),
                     log_extra=lambda *a: None, log_metric=logged.__setitem__)
    assert len(rewards) == 4 and all(isinstance(r, float) for r in rewards)
    assert rewards[0] == rewards[1] and 0.0 < rewards[0] < 1.0
    assert rewards[2:] == [0.1, 0.0]
    assert evaluator.calls == 3  # the parent, the new child once for both copies, the twin's probe
    assert logged["evosearch/duplicate"] == 0.25 and logged["evosearch/cached"] == 0.25
    assert set(logged) == {f"evosearch/{k}" for k in KINDS} | {"evosearch/cached"}
    # kind may be None, parent_score absent; a single parent is broadcast.
    assert reward(prompts=["p"], completions=[NEW_COEF], parent_source=REINFORCE) == rewards[:1]


def test_a_column_of_the_wrong_length_or_another_kind_is_refused():
    reward, _ = module()
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        reward(prompts=["p"], completions=["x"], parent_source=[REINFORCE, REINFORCE])
    with pytest.raises(ValueError, match="scores rule programs"):
        reward(prompts=["p"], completions=["x"], parent_source=[REINFORCE], kind=["policy"])


# -- the small parts ---------------------------------------------------------------------------------------------


def test_completion_text_reads_every_shape_trl_sends():
    assert completion_text("a") == "a"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}]}]) \
        == "a"
    with pytest.raises(TypeError):
        completion_text(3)


def test_sigmoid_is_stable_and_the_config_is_checked():
    assert sigmoid(0.0) == 0.5 and sigmoid(-1e6) == 0.0 and sigmoid(1e6) == 1.0
    assert sigmoid(1.0) == pytest.approx(1 / (1 + math.exp(-1)))
    with pytest.raises(ValueError, match="stages"):
        RewardConfig(stages="everything")
    with pytest.raises(ValueError, match="duplicate"):
        RewardConfig(duplicate=0.7)
    with pytest.raises(ValueError, match="no hurdle stage"):
        build_evaluator(RewardConfig(suite="policies"))


def test_a_batch_evaluated_in_parallel_measures_each_behaviour_once():
    reward, evaluator = module(RewardConfig(suite=TINY_SUITE, smoke_timeout_s=5, task_timeout_s=60, parallel=2))
    twin_of_new = search_replace("VF_COEF = 0.5\n", "VF_COEF = 0.125 * 2\n")
    answers = [NEW_COEF, twin_of_new, COSMETIC, NEW_COEF]
    outcomes = reward.score_batch([Edit(REINFORCE, a) for a in answers])
    # NEW_COEF and its twin ran at once: whichever probed first owns the behaviour, the other is its twin.
    assert sorted(o.kind for o in outcomes[:2]) == ["duplicate", "evaluated"]
    assert outcomes[2].kind == "duplicate" and outcomes[3].cached
    assert (outcomes[3].kind, outcomes[3].reward) == (outcomes[0].kind, outcomes[0].reward)
    assert evaluator.calls == 4  # the parent, then three distinct children
    assert sum(r.stage == "full" for r in evaluator.results) == 2  # the parent and one of the twins trained
