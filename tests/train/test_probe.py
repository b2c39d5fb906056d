"""The fingerprint: same behaviour collides, different behaviour does not."""

import pytest
from conftest import BASELINES, rule_source

from evosearch.train.probe import probe
from evosearch.train.rule import RuleError, load_rule


def fingerprint(source: str) -> str:
    return probe(load_rule(source))["fingerprint"]


PPO_RESPELLED = '''
import torch
def loss(b):
    a = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)
    r = (b.logp - b.old_logp).exp()
    surrogate = torch.min(a * r, a * r.clamp(0.8, 1.2))
    vf = torch.maximum((b.value - b.ret).pow(2),
                       (b.old_value + (b.value - b.old_value).clamp(-0.2, 0.2) - b.ret).pow(2))
    return -surrogate.mean() + 0.25 * vf.mean() - 0.01 * b.entropy.mean()
'''

PLAIN_PG_WITH_RATIO = '''
import torch
def loss(b):
    a = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)
    r = torch.exp(b.logp - b.old_logp)
    clipped = b.old_value + torch.clamp(b.value - b.old_value, -0.2, 0.2)
    vf = torch.maximum((b.value - b.ret) ** 2, (clipped - b.ret) ** 2)
    return -(a * r).mean() + 0.25 * vf.mean() - 0.01 * b.entropy.mean()
'''


def test_two_spellings_of_ppo_clip_collide():
    assert fingerprint(rule_source("ppo_clip")) == fingerprint(PPO_RESPELLED)


def test_a_parameter_free_term_collides():
    source = rule_source("ppo_clip").replace(
        "return pg_loss - ENT_COEF", "return b.adv.abs().mean() + pg_loss - ENT_COEF")
    assert source != rule_source("ppo_clip")
    assert fingerprint(source) == fingerprint(rule_source("ppo_clip"))


def test_clipping_is_seen_by_the_probe():
    assert fingerprint(PLAIN_PG_WITH_RATIO) != fingerprint(PPO_RESPELLED)


def test_a_different_clip_range_is_a_different_rule():
    assert fingerprint(rule_source("ppo_clip").replace("CLIP = 0.2", "CLIP = 0.3")) != fingerprint(
        rule_source("ppo_clip"))


def test_all_baselines_differ():
    prints = {name: fingerprint(rule_source(name)) for name in BASELINES}
    assert len(set(prints.values())) == len(BASELINES), prints


def test_advantage_function_is_part_of_the_fingerprint():
    a2c = rule_source("a2c")
    explicit_gae = a2c + '''
def advantages(rewards, values, dones, last_value, gamma, lam):
    import torch
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    for t in reversed(range(rewards.shape[0])):
        nxt = last_value if t == rewards.shape[0] - 1 else values[t + 1]
        delta = rewards[t] + gamma * nxt * (1 - dones[t]) - values[t]
        last = delta + gamma * lam * (1 - dones[t]) * last
        adv[t] = last
    return adv
'''
    assert fingerprint(explicit_gae) == fingerprint(a2c)  # the same estimator, spelled out
    assert fingerprint(explicit_gae.replace("gamma * lam *", "gamma * 0.5 *")) != fingerprint(a2c)


def test_progress_dependent_rules_are_distinguished():
    annealed = rule_source("a2c").replace("ENT_COEF * b.entropy", "ENT_COEF * (1 - b.progress) * b.entropy")
    assert fingerprint(annealed) != fingerprint(rule_source("a2c"))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def loss(b):\n    return (b.value ** 2).mean()\n", "no gradient reaches the policy network"),
        ("def loss(b):\n    return -(b.logp * b.adv).mean()\n", "no gradient reaches the value network"),
        ("def loss(b):\n    return (b.adv * 0).mean()\n", "no gradient reaches the networks"),
        ("import torch\ndef loss(b):\n    return b.logp.mean() + b.value.mean() + torch.log(b.progress - 0.5)\n",
         "not finite"),
    ],
)
def test_smoke_failures_explain_themselves(source, message):
    with pytest.raises(RuleError, match=message):
        probe(load_rule(source))
