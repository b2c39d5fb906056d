"""Actor-critic networks for S seeds at once: stacked weights and ``torch.baddbmm``.

On CPU the network, not the environment, is the cost of training; one batched matrix
multiply over all seeds replaces S small ones, which is where the harness's speed comes from.
Architecture and initialisation follow CleanRL's ppo.py: two 64-unit tanh layers, orthogonal
weights (gain sqrt(2), 0.01 for the policy head, 1.0 for the value head), zero biases.

Image observations (a ``Spec`` with ``obs_shape``, e.g. MinAtar's ``[C, 10, 10]``) get the
MinAtar papers' torso instead: one 3x3 convolution with 16 channels and no padding, ReLU, one
dense ReLU layer of ``hidden`` units, then the head. The convolution is an im2col
(``unfold``) and one ``baddbmm`` over seeds, so it batches over seeds like the MLP's layers.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

# Parameters and their gradients are strided views into one [S, P] tensor each (see Ensemble);
# autograd accumulates into such gradients in place, correctly, but says once that the layout
# is not the dense one it prefers.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


def _orthogonal(rows: int, cols: int, gain: float, generator: torch.Generator) -> torch.Tensor:
    """An orthogonal ``[rows, cols]`` matrix as ``nn.init.orthogonal_`` makes it, from our RNG."""
    flat = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(flat)
    q = q * torch.sign(torch.diagonal(r))
    if rows < cols:
        q = q.T
    return (gain * q[:rows, :cols]).to(torch.float32)


@dataclass(frozen=True)
class Spec:
    """What the networks need to know about the environment."""

    obs_dim: int
    act_dim: int  # number of discrete actions, or the action vector's length
    discrete: bool
    hidden: int = 64
    #: ``(channels, height, width)`` of an image observation, flattened channels-first into ``obs_dim``;
    #: None for a vector observation. An image gets the convolutional torso.
    obs_shape: tuple[int, int, int] | None = None

    @property
    def convolutional(self) -> bool:
        return self.obs_shape is not None


#: The convolutional torso: output channels and kernel size (one layer, no padding, stride 1).
CONV_CHANNELS = 16
CONV_KERNEL = 3


def _conv_geometry(spec: Spec) -> tuple[int, int]:
    """``(patch, positions)``: values per 3x3 patch over all channels, and the conv's output positions."""
    assert spec.obs_shape is not None
    channels, height, width = spec.obs_shape
    if height < CONV_KERNEL or width < CONV_KERNEL:
        raise ValueError(f"an image observation must be at least {CONV_KERNEL}x{CONV_KERNEL}, got {height}x{width}")
    return channels * CONV_KERNEL * CONV_KERNEL, (height - CONV_KERNEL + 1) * (width - CONV_KERNEL + 1)


def _layer_sizes(spec: Spec) -> dict[str, list[int]]:
    """The dense layers' widths per net; for an image, from the flattened convolution onwards."""
    if spec.convolutional:
        _, positions = _conv_geometry(spec)
        flat = positions * CONV_CHANNELS
        return {"actor": [flat, spec.hidden, spec.act_dim], "critic": [flat, spec.hidden, 1]}
    return {
        "actor": [spec.obs_dim, spec.hidden, spec.hidden, spec.act_dim],
        "critic": [spec.obs_dim, spec.hidden, spec.hidden, 1],
    }


def parameter_shapes(spec: Spec) -> dict[str, tuple[int, int]]:
    """Every parameter of one seed's actor and critic by name, with its shape: what a weights file must hold."""
    shapes: dict[str, tuple[int, int]] = {}
    for net, dims in _layer_sizes(spec).items():
        if spec.convolutional:
            patch, _ = _conv_geometry(spec)
            shapes[f"{net}_conv_w"], shapes[f"{net}_conv_b"] = (patch, CONV_CHANNELS), (1, CONV_CHANNELS)
        for layer, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
            shapes[f"{net}_w{layer}"], shapes[f"{net}_b{layer}"] = (n_in, n_out), (1, n_out)
    if not spec.discrete:
        shapes["actor_logstd"] = (1, spec.act_dim)
    return shapes


class Ensemble:
    """Policy and value MLPs for ``seeds`` independent agents, stored as ``[S, in, out]``.

    Every parameter is a view into one ``[S, P]`` tensor (``flat``, a row per seed), and every
    gradient a view into ``flat_grad``: the per-seed gradient clip is then one norm over rows
    and Adam one update of one tensor, instead of a dozen small ops per parameter tensor.
    Parameters are named ``actor.*`` and ``critic.*`` so the trusted scorer can rebuild the
    policy from a plain ``.npz`` of them.
    """

    def __init__(self, spec: Spec, seeds: list[int], *, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.spec = spec
        sizes = _layer_sizes(spec)
        shapes = parameter_shapes(spec)
        count = len(seeds)
        width = sum(a * b for a, b in shapes.values())
        self.flat = torch.zeros(count, width, device=device, dtype=dtype, requires_grad=True)
        self.flat_grad = torch.zeros_like(self.flat, requires_grad=False)
        self.flat.grad = self.flat_grad
        self.weights: dict[str, torch.Tensor] = {}
        offset = 0
        for name, (a, b) in shapes.items():
            # A leaf that shares flat's storage (detach keeps the storage, drops the graph).
            param = self.flat.detach()[:, offset:offset + a * b].view(count, a, b).requires_grad_()
            param.grad = self.flat_grad[:, offset:offset + a * b].view(count, a, b)
            self.weights[name] = param
            offset += a * b
        hidden_gains = (math.sqrt(2),) * (len(sizes["actor"]) - 2)
        gains = {"actor": (*hidden_gains, 0.01), "critic": (*hidden_gains, 1.0)}
        with torch.no_grad():
            for seed_index, seed in enumerate(seeds):
                generator = torch.Generator().manual_seed(int(seed))
                for net, dims in sizes.items():
                    if spec.convolutional:  # CleanRL's Atari init: orthogonal, gain sqrt(2), for the conv too
                        patch, _ = _conv_geometry(spec)
                        conv = _orthogonal(CONV_CHANNELS, patch, math.sqrt(2), generator).T
                        self.weights[f"{net}_conv_w"][seed_index] = conv
                    for layer, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
                        w = _orthogonal(n_out, n_in, gains[net][layer], generator).T
                        self.weights[f"{net}_w{layer}"][seed_index] = w

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    @property
    def seeds(self) -> int:
        return self.weights["actor_w0"].shape[0]

    def folded(self, net: str) -> tuple[torch.Tensor, ...]:
        """``net``'s weights rewritten for the sigmoid form of the MLP (see ``_network``).

        ``tanh(z) = 2 sigmoid(2z) - 1``, and ``(2s - 1) W + b = 2 s W + (b - 1^T W)``: scaling the
        weights, not the activations, keeps every extra op weight-sized (and out of the backward
        pass over activations). A rollout computes this once; an update step once per minibatch.
        """
        w = self.weights
        if self.spec.convolutional:  # ReLU layers: nothing to fold; the weights as the forward pass uses them
            return tuple(w[f"{net}_{name}"] for name in ("conv_w", "conv_b", "w0", "b0", "w1", "b1"))
        w0, w1, w2 = w[f"{net}_w0"], w[f"{net}_w1"], w[f"{net}_w2"]
        return (w0 * 2.0, w[f"{net}_b0"] * 2.0,
                w1 * 4.0, (w[f"{net}_b1"] - w1.sum(1, keepdim=True)) * 2.0,
                w2 * 2.0, w[f"{net}_b2"] - w2.sum(1, keepdim=True))

    def _network(self, net: str, x: torch.Tensor, folded: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """The two-layer tanh MLP, computed through sigmoids (or, for images, the convolutional net).

        ATen's CPU tanh costs ~3.2 ns per float32 against ~0.9 ns for sigmoid, and it was the largest
        single cost of training; in this form each hidden layer is one baddbmm and one sigmoid,
        forward and backward. Same parameters and same function as CleanRL's network: the outputs
        agree with the ``torch.tanh`` form to float rounding.
        """
        if self.spec.convolutional:
            return self._cnn(x, folded if folded is not None else self.folded(net))
        w0, b0, w1, b1, w2, b2 = folded if folded is not None else self.folded(net)
        s1 = torch.sigmoid(torch.baddbmm(b0, x, w0))
        s2 = torch.sigmoid(torch.baddbmm(b1, s1, w1))
        return _skinny_output(s2, w2, b2)

    def _cnn(self, x: torch.Tensor, weights: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Conv 3x3 (16 channels) -> ReLU -> dense ReLU -> head, for ``x`` of shape ``[S, N, C*H*W]``.

        The convolution is im2col and one batched matmul: ``unfold`` cuts every 3x3 patch out of
        every image (all seeds' images at once), and ``baddbmm`` applies each seed's ``[patch, 16]``
        filter bank to its own patches. The flattened feature order is (position, channel), a fixed
        permutation of a conv layer's usual (channel, position) that the dense layer absorbs.
        """
        conv_w, conv_b, w0, b0, w1, b1 = weights
        seeds, count = x.shape[0], x.shape[1]
        assert self.spec.obs_shape is not None
        patch, positions = _conv_geometry(self.spec)
        images = x.reshape(seeds * count, *self.spec.obs_shape)
        patches = torch.nn.functional.unfold(images, CONV_KERNEL)  # [S*N, patch, positions]
        patches = patches.view(seeds, count, patch, positions).transpose(2, 3).reshape(seeds, count * positions, patch)
        features = torch.relu(torch.baddbmm(conv_b, patches, conv_w))  # [S, N*positions, 16]
        hidden = torch.relu(torch.baddbmm(b0, features.reshape(seeds, count, positions * CONV_CHANNELS), w0))
        return _skinny_output(hidden, w1, b1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` is ``[S, N, obs_dim]``; returns ``[S, N]``."""
        return self._network("critic", obs).squeeze(-1)

    def policy_params(self, obs: torch.Tensor, folded: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """Logits ``[S, N, A]`` (discrete) or the Gaussian mean ``[S, N, A]`` (continuous).

        ``folded``: the actor's ``folded("actor")`` weights, when the caller reuses them over many
        calls with unchanged weights (a rollout).
        """
        return self._network("actor", obs, folded)

    def actor_parameters(self) -> list[torch.Tensor]:
        return [p for k, p in self.weights.items() if k.startswith("actor")]

    def critic_parameters(self) -> list[torch.Tensor]:
        return [p for k, p in self.weights.items() if k.startswith("critic")]

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {k: p.detach().cpu().numpy().copy() for k, p in self.weights.items()}

    @classmethod
    def from_numpy(cls, spec: Spec, arrays: dict[str, np.ndarray], device: str | torch.device = "cpu") -> Ensemble:
        seeds = arrays["actor_w0"].shape[0]
        model = cls(spec, list(range(seeds)), device=device)
        with torch.no_grad():
            for k, p in model.weights.items():
                if k not in arrays or arrays[k].shape != tuple(p.shape):
                    raise ValueError(f"weights file lacks {k} of shape {tuple(p.shape)}")
                p.copy_(torch.from_numpy(np.asarray(arrays[k], dtype=np.float32)))
        return model


def _skinny_output(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``h @ w + b`` for an output layer of a few units (a value head, a handful of actions).

    MKL's batched GEMM is slow on such narrow matrices: on one core, for 64 seeds x 128 samples,
    forward and backward take 2.2 ms for one output unit and 1.7 ms for two through ``baddbmm``,
    against 0.66 ms as a broadcast multiply-sum and 1.1 ms as the transposed product.
    """
    if w.shape[-1] == 1:
        return (h * w.transpose(1, 2)).sum(-1, keepdim=True) + b
    return torch.bmm(w.transpose(1, 2), h.transpose(1, 2)).transpose(1, 2) + b


def _gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, logstd: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian, summed over the action dimensions."""
    return (-((actions - mean) ** 2) / (2 * logstd.exp() ** 2) - logstd - 0.5 * math.log(2 * math.pi)).sum(-1)


def distribution_stats(
    model: Ensemble, obs: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability and entropy of ``actions`` under the current policy, each ``[S, N]``."""
    params = model.policy_params(obs)
    if model.spec.discrete:
        logits = torch.log_softmax(params, -1)  # one fused op; logsumexp is six
        logp = logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(logits.exp() * logits).sum(-1)
        return logp, entropy
    logstd = model.weights["actor_logstd"].expand_as(params)
    entropy = (0.5 + 0.5 * math.log(2 * math.pi) + logstd).sum(-1)
    return _gaussian_log_prob(actions, params, logstd), entropy


@torch.no_grad()
def sample_actions(
    model: Ensemble, obs: torch.Tensor, generator: torch.Generator, folded: tuple[torch.Tensor, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample actions; returns ``(actions, logp)`` for ``[S, N, obs_dim]`` observations.

    No value here: the trainer computes the critic's values for a whole rollout in one batched
    pass afterwards, where the matrix multiplies are large enough to run near the CPU's peak.
    """
    params = model.policy_params(obs, folded)
    if model.spec.discrete:
        # Gumbel-max through an exponential race: argmax(logits - log E), E ~ Exp(1), is a sample
        # of the softmax; fewer ops than Categorical or drawing Gumbel noise from uniforms.
        noise = torch.empty_like(params).exponential_(generator=generator).log_()
        actions = (params - noise).argmax(-1)
        logp = torch.log_softmax(params, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return actions, logp
    logstd = model.weights["actor_logstd"].expand_as(params)
    actions = params + logstd.exp() * torch.randn(params.shape, generator=generator, device=params.device)
    return actions, _gaussian_log_prob(actions, params, logstd)
