"""The meta-gradient is the derivative it claims to be, ES agrees with it, and auto finds what has none.

A small case in float64 (two CartPole agents, 16-step rollouts, hidden 16): the meta-objective
as a function of the constants, with the agents' starting state, minibatch order and fresh
experience held fixed, is differentiated by autograd through the unrolled updates and by
central finite differences; the two must agree within 5%.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from evosearch.metagrad.constants import lift
from evosearch.metagrad.tuner import MetaTuner, TunerConfig
from evosearch.train.harness import TrainConfig
from evosearch.train.rule import RuleError, load_rule

ROOT = Path(__file__).resolve().parents[2]
MISTUNED = (ROOT / "programs" / "examples" / "ppo_clip_mistuned.py").read_text()
TASK = TrainConfig(env_id="CartPole-v1", total_steps=2 * 16 * 40, num_envs=2, num_steps=16, num_minibatches=2,
                   update_epochs=2, hidden=16)


def tuner_for(source: str, method: str = "grad", inner_steps: int = 4, task: TrainConfig = TASK,
              **config) -> tuple[MetaTuner, list[str]]:
    lifted = lift(source)
    rule = load_rule(lifted.parametric_source)
    rule.module.__dict__["CONSTANTS"] = [torch.zeros(())] * len(lifted.constants)
    tuner = MetaTuner(rule, [c.value for c in lifted.constants], [c.log_space for c in lifted.constants], [task],
                      TunerConfig(inner_steps=inner_steps, population=2, method=method, **config),
                      dtype=torch.float64)
    return tuner, lifted.names()


@pytest.fixture(scope="module")
def fixed_case():
    """The tuner after two meta-steps (agents have learnt a little), and one meta-step's fixed inputs."""
    torch.manual_seed(0)
    tuner, names = tuner_for(MISTUNED)
    for _ in range(2):
        tuner.step()
    gradient, _, starts, _ = tuner.meta_gradient()
    return tuner, names, gradient, starts


def test_the_meta_gradient_matches_finite_differences(fixed_case):
    tuner, names, gradient, starts = fixed_case
    theta = tuner.theta.detach()
    h = 1e-4
    checked = 0
    for i, name in enumerate(names):
        step = torch.zeros_like(theta)
        step[i] = h
        plus = float(tuner.objective_at(starts, theta + step))
        minus = float(tuner.objective_at(starts, theta - step))
        numeric = (plus - minus) / (2 * h)
        if name == "CLIP":  # selects a branch: no gradient, exactly, by either route
            assert float(gradient[i]) == 0.0 and abs(numeric) < 1e-7
            continue
        assert abs(float(gradient[i]) - numeric) <= 0.05 * abs(numeric), (name, float(gradient[i]), numeric)
        checked += 1
    assert checked == 4  # ENT_COEF, VF_COEF, PG_COEF and the inline 0.5


def test_evolution_strategies_agree_in_sign_with_the_meta_gradient(fixed_case):
    tuner, names, gradient, starts = fixed_case
    tuner.config = TunerConfig(inner_steps=4, population=2, es_pairs=48, es_sigma=0.02)
    es = tuner.es_gradient(starts, torch.tensor([n != "CLIP" for n in names], dtype=torch.float64))
    for i, name in enumerate(names):
        if name == "CLIP":
            assert float(es[i]) == 0.0  # not perturbed
            continue
        assert torch.sign(es[i]) == torch.sign(gradient[i]), (name, float(es[i]), float(gradient[i]))


def test_auto_hands_a_constant_without_gradient_to_es_and_keeps_the_others_on_gradients():
    # A large step size, so that ratios leave PPO's clip range and the clip matters to the outcome.
    tuner, names = tuner_for(MISTUNED, method="auto", task=replace(TASK, learning_rate=0.05), flat_steps=2,
                             es_pairs=2)
    records = [tuner.step() for _ in range(3)]
    clip = names.index("CLIP")
    assert records[0].by_es[clip] is False and records[-1].by_es[clip] is True
    assert not any(es for i, es in enumerate(records[-1].by_es) if i != clip)
    assert records[-1].gradient[clip] != 0.0  # ES estimated something for it
    assert records[-1].values[clip] != pytest.approx(0.2, abs=1e-9)  # and it moved


def test_the_constants_move_the_way_their_gradient_says_and_stay_positive():
    tuner, names = tuner_for(MISTUNED, method="grad")
    before = [float(v) for v in tuner.values().detach()]
    record = tuner.step()
    for i, name in enumerate(names):
        if record.gradient[i] == 0.0:
            assert record.values[i] == pytest.approx(before[i])
        else:
            assert (record.values[i] > before[i]) == (record.gradient[i] > 0), name
        assert record.values[i] > 0


def test_population_is_staggered_and_replaced_when_its_lifetime_ends():
    tuner, _ = tuner_for(MISTUNED, method="grad", inner_steps=1)
    population = tuner.populations[0]
    assert population.age.tolist() == [0, population.lifetime // 2]
    replaced = sum(tuner.step().replaced for _ in range(population.lifetime - population.lifetime // 2))
    assert replaced == 1 and sorted(population.age.tolist())[0] == 0


def test_state_round_trip_resumes_the_same_run():
    tuner, _ = tuner_for(MISTUNED, method="grad")
    tuner.step()
    saved = tuner.state()
    other, _ = tuner_for(MISTUNED, method="grad")
    other.load_state(saved)
    assert torch.equal(other.theta.detach(), tuner.theta.detach())
    assert other.steps_done == 1
    for key, w in tuner.populations[0].weights.items():
        assert torch.equal(other.populations[0].weights[key], w)


def test_a_rule_whose_loss_turns_non_finite_is_the_rules_error():
    source = MISTUNED.replace("return PG_COEF * pg_loss", "return 0.0 / (ENT_COEF - ENT_COEF) + PG_COEF * pg_loss")
    tuner, _ = tuner_for(source)
    with pytest.raises(RuleError, match="non-finite"):
        tuner.step()


def test_a_bad_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        TunerConfig(method="sgd")
