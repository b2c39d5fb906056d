"""Program kinds: each kind-dependent choice comes from one object per kind."""

from importlib import resources

import pytest
from conftest import ROOT

from evosearch import kinds
from evosearch.devices import DeviceError
from evosearch.evaluate import CascadeConfig, PolicyEvaluator, RuleEvaluator
from evosearch.program import static_check

RULE = (ROOT / "programs" / "rules" / "a2c.py").read_text()
POLICY = (ROOT / "programs" / "policies" / "cartpole.py").read_text()


def test_the_two_kinds_are_found_with_the_default_first():
    assert kinds.names() == ("rule", "policy")
    with pytest.raises(ValueError, match="expected one of 'rule', 'policy'|expected one of rule, policy"):
        kinds.get("haiku")


def test_a_program_is_the_kind_whose_entry_point_it_defines():
    assert kinds.detect(RULE).name == "rule"
    assert kinds.detect(POLICY).name == "policy"
    assert kinds.detect("def loss(b):\n    return 0\n\ndef act(obs):\n    return obs\n").name == "rule"  # both
    assert kinds.detect("def broken(:").name == "rule"


def test_the_static_check_asks_the_kind_for_its_entry_point():
    assert static_check(RULE, "rule") == [] and static_check(POLICY, "policy") == []
    assert any("`act(obs)`" in str(i) for i in static_check(RULE, "policy"))
    assert any("`loss(b)`" in str(i) for i in static_check(POLICY, "rule"))


def test_only_a_policy_is_tied_to_an_environment():
    assert kinds.get("policy").env_id(POLICY) == "CartPole-v1"
    assert kinds.get("rule").env_id(RULE) is None


def test_each_kind_makes_its_own_evaluator():
    rule = kinds.get("rule").evaluator(CascadeConfig(suite="quick"))
    policy = kinds.get("policy").evaluator(CascadeConfig(suite="policies"))
    assert isinstance(rule, RuleEvaluator) and isinstance(policy, PolicyEvaluator)


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_device_for_a_policy_is_refused_with_a_reason(device):
    with pytest.raises(DeviceError, match="played, not trained"):
        PolicyEvaluator(CascadeConfig(suite="policies", device=device))
    kinds.get("policy").check_device("cpu")  # cpu and auto are fine
    kinds.get("policy").check_device("auto")


def test_every_kind_has_its_prompt_texts():
    prompts = resources.files("evosearch.propose") / "prompts"
    for name in kinds.names():
        for text in (f"contract_{name}.txt", f"scoring_{name}.txt", f"ideas_{name}.txt"):
            assert (prompts / text).is_file(), text


def test_a_policy_campaign_on_a_gpu_is_a_config_error():
    from evosearch.config import ConfigError, config_from_dict

    raw = {"name": "p", "kind": "policy", "seeds": [str(ROOT / "programs" / "policies" / "cartpole.py")],
           "evaluation": {"suite": "policies", "device": "cuda"}, "budget": {"max_evals": 1}}
    with pytest.raises(ConfigError, match="evaluation.device: .*played, not trained"):
        config_from_dict(raw)
    with pytest.raises(ConfigError, match="kind: 'haiku' is not one of"):
        config_from_dict({**raw, "kind": "haiku", "evaluation": {"suite": "policies"}})
