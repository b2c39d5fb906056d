"""The ensemble is CleanRL's network: the sigmoid-folded forward equals the tanh MLP it stands for."""

import torch

from evosearch.train.networks import Ensemble, Spec, distribution_stats, sample_actions


def _tanh_mlp(model: Ensemble, net: str, x: torch.Tensor) -> torch.Tensor:
    w = model.weights
    h = torch.tanh(x @ w[f"{net}_w0"] + w[f"{net}_b0"])
    h = torch.tanh(h @ w[f"{net}_w1"] + w[f"{net}_b1"])
    return h @ w[f"{net}_w2"] + w[f"{net}_b2"]


def _model(discrete: bool = True) -> Ensemble:
    model = Ensemble(Spec(obs_dim=6, act_dim=3, discrete=discrete), [0, 1, 2])
    with torch.no_grad():  # CleanRL's init leaves zero biases; test the folding with non-zero ones
        for key, p in model.weights.items():
            if "_b" in key:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(key)))
    return model


def test_forward_equals_the_tanh_network_it_stands_for():
    model = _model()
    x = torch.randn(3, 50, 6, generator=torch.Generator().manual_seed(0)) * 3
    for net in ("actor", "critic"):
        torch.testing.assert_close(model._mlp(net, x), _tanh_mlp(model, net, x), atol=2e-6, rtol=1e-5)


def test_gradients_equal_those_of_the_tanh_network():
    model = _model()
    x = torch.randn(3, 40, 6, generator=torch.Generator().manual_seed(1))
    model._mlp("actor", x).square().sum().backward()
    ours = {k: p.grad.clone() for k, p in model.weights.items() if p.grad is not None}
    model.zero_grad()
    _tanh_mlp(model, "actor", x).square().sum().backward()
    for key, grad in ours.items():
        torch.testing.assert_close(grad, model.weights[key].grad, atol=1e-5, rtol=1e-4)


def test_sampled_discrete_actions_follow_the_softmax():
    model = _model()
    obs = torch.randn(3, 1, 6, generator=torch.Generator().manual_seed(2)).expand(3, 20000, 6)
    actions, logp = sample_actions(model, obs, torch.Generator().manual_seed(3))
    probs = torch.softmax(model.policy_params(obs[:, :1]), -1).squeeze(1).detach()
    freq = torch.stack([torch.bincount(a, minlength=3) for a in actions]).float() / actions.shape[1]
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)
    expected, _ = distribution_stats(model, obs, actions)
    torch.testing.assert_close(logp, expected.detach(), atol=1e-5, rtol=1e-5)


def test_gaussian_actions_and_log_probabilities():
    model = _model(discrete=False)
    obs = torch.randn(3, 500, 6, generator=torch.Generator().manual_seed(4))
    actions, logp = sample_actions(model, obs, torch.Generator().manual_seed(5))
    assert actions.shape == (3, 500, 3)
    expected, _ = distribution_stats(model, obs, actions)
    torch.testing.assert_close(logp, expected.detach(), atol=1e-5, rtol=1e-5)
