"""The full classic-quick suite, as the README's main job runs it (pytest -m slow)."""

import pytest
from conftest import RULES

from evosearch.evaluate import CascadeConfig, Evaluator
from evosearch.program import Program


@pytest.mark.slow
def test_ppo_clip_near_reference_and_reinforce_clearly_lower_on_cartpole():
    evaluator = Evaluator(CascadeConfig(suite="classic-quick"))
    ppo = evaluator.evaluate(Program.from_file(RULES / "ppo_clip.py"))
    reinforce = evaluator.evaluate(Program.from_file(RULES / "reinforce.py"))
    assert ppo.ok and reinforce.outcome in ("ok", "rejected"), (ppo.error, reinforce.error)
    assert 0.8 <= ppo.score <= 1.2
    if reinforce.ok:
        assert reinforce.tasks["CartPole-v1"].ci[1] < ppo.tasks["CartPole-v1"].ci[0]
