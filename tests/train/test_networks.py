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
        torch.testing.assert_close(model._network(net, x), _tanh_mlp(model, net, x), atol=2e-6, rtol=1e-5)


def test_gradients_equal_those_of_the_tanh_network():
    model = _model()
    x = torch.randn(3, 40, 6, generator=torch.Generator().manual_seed(1))
    model._network("actor", x).square().sum().backward()
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


def _conv_net(model: Ensemble, net: str, x: torch.Tensor) -> torch.Tensor:
    """The image torso as ordinary layers, seed by seed: conv2d 3x3 x16, ReLU, dense ReLU, head."""
    w, (channels, height, width) = model.weights, model.spec.obs_shape
    outputs = []
    for seed in range(x.shape[0]):
        images = x[seed].view(-1, channels, height, width)
        kernel = w[f"{net}_conv_w"][seed].T.reshape(16, channels, 3, 3)
        features = torch.relu(torch.nn.functional.conv2d(images, kernel, w[f"{net}_conv_b"][seed, 0]))
        flat = features.permute(0, 2, 3, 1).reshape(images.shape[0], -1)  # (position, channel) order
        hidden = torch.relu(flat @ w[f"{net}_w0"][seed] + w[f"{net}_b0"][seed])
        outputs.append(hidden @ w[f"{net}_w1"][seed] + w[f"{net}_b1"][seed])
    return torch.stack(outputs)


def test_image_observations_get_a_batched_conv_net_equal_to_per_seed_conv2d():
    spec = Spec(obs_dim=4 * 100, act_dim=3, discrete=True, hidden=32, obs_shape=(4, 10, 10))
    model = Ensemble(spec, [0, 1, 2])
    with torch.no_grad():
        for key, p in model.weights.items():
            if "_b" in key:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(key)))
    x = (torch.rand(3, 20, 400, generator=torch.Generator().manual_seed(2)) < 0.2).float()
    for net in ("actor", "critic"):
        torch.testing.assert_close(model._network(net, x), _conv_net(model, net, x), atol=2e-5, rtol=1e-4)
    model._network("actor", x).square().sum().backward()
    ours = {k: p.grad.clone() for k, p in model.weights.items() if k.startswith("actor")}
    model.zero_grad()
    _conv_net(model, "actor", x).square().sum().backward()
    for key, grad in ours.items():
        torch.testing.assert_close(grad, model.weights[key].grad, atol=1e-4, rtol=1e-3)
    # each seed starts from its own weights, and a weights file round-trips
    assert not torch.equal(model.weights["actor_conv_w"][0], model.weights["actor_conv_w"][1])
    again = Ensemble.from_numpy(spec, model.to_numpy())
    torch.testing.assert_close(again.policy_params(x), model.policy_params(x))
