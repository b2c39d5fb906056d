"""Each baseline keeps the rule contract; vmap and the per-seed loop agree; GAE is right."""

import pytest
import torch
from conftest import BASELINES, rule_source

from evosearch.train.probe import probe
from evosearch.train.rule import Rule, RuleError, gae, load_rule, per_seed_losses


def _fields(seeds=3, samples=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    logp = torch.randn(seeds, samples, generator=g, requires_grad=True)
    value = torch.randn(seeds, samples, generator=g, requires_grad=True)
    fields = {
        "logp": logp, "old_logp": logp.detach() + 0.3 * torch.randn(seeds, samples, generator=g),
        "adv": torch.randn(seeds, samples, generator=g), "ret": torch.randn(seeds, samples, generator=g),
        "value": value, "old_value": value.detach() + 0.1, "entropy": torch.rand(seeds, samples, generator=g),
        "progress": torch.full((seeds,), 0.25),
    }
    return fields, logp, value


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_loss_is_a_finite_scalar_with_gradients_to_both_networks(name):
    rule = load_rule(rule_source(name))
    fields, logp, value = _fields()
    losses = per_seed_losses(rule, fields)
    assert losses.shape == (3,) and torch.isfinite(losses).all()
    losses.sum().backward()
    assert logp.grad.abs().sum() > 0 and value.grad.abs().sum() > 0
    assert probe(load_rule(rule_source(name)))["fingerprint"]


@pytest.mark.parametrize("name", BASELINES)
def test_vmap_and_per_seed_loop_agree(name):
    fields, _, _ = _fields()
    batched = per_seed_losses(load_rule(rule_source(name)), fields)
    looped_rule = load_rule(rule_source(name))
    looped_rule.use_vmap = False
    looped = per_seed_losses(looped_rule, fields)
    torch.testing.assert_close(batched, looped)


def test_seeds_do_not_mix():
    """Each seed's loss depends on its own slice only (mean over the minibatch, not over seeds)."""
    rule = load_rule(rule_source("ppo_clip"))
    fields, _, _ = _fields()
    base = per_seed_losses(rule, fields).detach()
    fields["adv"] = fields["adv"].clone()
    fields["adv"][2] = torch.randn(fields["adv"].shape[1], generator=torch.Generator().manual_seed(9))
    changed = per_seed_losses(rule, fields).detach()
    torch.testing.assert_close(changed[:2], base[:2])
    assert not torch.allclose(changed[2], base[2])


def test_data_dependent_rule_falls_back_to_the_loop():
    source = (
        "def loss(b):\n"
        "    if b.adv.mean().item() > 0:\n"
        "        return -(b.logp * b.adv).mean() + (b.value**2).mean()\n"
        "    return -(b.logp * b.adv).mean() + ((b.value - b.ret) ** 2).mean()\n"
    )
    rule = load_rule(source)
    fields, _, _ = _fields()
    assert per_seed_losses(rule, fields).shape == (3,)
    assert rule.use_vmap is False


def test_wrong_shape_is_a_rule_error():
    with pytest.raises(RuleError, match="shape"):
        per_seed_losses(load_rule("def loss(b):\n    return b.logp * 2\n"), _fields()[0])
    looped = load_rule("def loss(b):\n    return [1.0]\n")
    looped.use_vmap = False
    with pytest.raises(RuleError, match="expected a 0-d torch.Tensor"):
        per_seed_losses(looped, _fields()[0])


def test_missing_loss_is_a_rule_error():
    with pytest.raises(RuleError, match="no function `loss"):
        load_rule("x = 1\n")


def test_gae_matches_a_hand_computation():
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.5], [0.5], [0.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    last = torch.tensor([2.0])
    gamma, lam = 0.9, 0.8
    adv = gae(rewards, values, dones, last, gamma, lam)
    d2 = 1.0 + gamma * 2.0 - 0.5        # step 2 bootstraps from last_value
    d1 = 1.0 - 0.5                       # step 1 ends an episode: no bootstrap
    d0 = 1.0 + gamma * 0.5 - 0.5
    assert adv[2, 0] == pytest.approx(d2)
    assert adv[1, 0] == pytest.approx(d1)
    assert adv[0, 0] == pytest.approx(d0 + gamma * lam * d1)


def test_reinforce_advantages_are_monte_carlo_returns_minus_baseline():
    rule: Rule = load_rule(rule_source("reinforce"))
    rewards = torch.ones(4, 1)
    values = torch.zeros(4, 1)
    dones = torch.tensor([[0.0], [0.0], [1.0], [0.0]])
    adv = rule.advantages(rewards, values, dones, torch.tensor([10.0]), 0.5, 0.95)
    assert adv[:, 0].tolist() == pytest.approx([1.75, 1.5, 1.0, 6.0])
