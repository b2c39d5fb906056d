"""Actor-critic networks for S seeds at once: stacked weights and ``torch.baddbmm``.

On CPU the network, not the environment, is the cost of training; one batched matrix
multiply over all seeds replaces S small ones, which is where the harness's speed comes from.
Architecture and initialisation follow CleanRL's ppo.py: two 64-unit tanh layers, orthogonal
weights (gain sqrt(2), 0.01 for the policy head, 1.0 for the value head), zero biases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


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


class Ensemble(torch.nn.Module):
    """Policy and value MLPs for ``seeds`` independent agents, stored as ``[S, in, out]``.

    Parameters are named ``actor.*`` and ``critic.*`` so the trusted scorer can rebuild the
    policy from a plain ``.npz`` of them.
    """

    def __init__(self, spec: Spec, seeds: list[int]) -> None:
        super().__init__()
        self.spec = spec
        sizes = {
            "actor": [spec.obs_dim, spec.hidden, spec.hidden, spec.act_dim],
            "critic": [spec.obs_dim, spec.hidden, spec.hidden, 1],
        }
        gains = {"actor": (math.sqrt(2), math.sqrt(2), 0.01), "critic": (math.sqrt(2), math.sqrt(2), 1.0)}
        self.weights = torch.nn.ParameterDict()
        for seed_index, seed in enumerate(seeds):
            generator = torch.Generator().manual_seed(int(seed))
            for net, dims in sizes.items():
                for layer, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
                    w = _orthogonal(n_out, n_in, gains[net][layer], generator).T.contiguous()
                    key_w, key_b = f"{net}_w{layer}", f"{net}_b{layer}"
                    if seed_index == 0:
                        self.weights[key_w] = torch.nn.Parameter(torch.empty(len(seeds), n_in, n_out))
                        self.weights[key_b] = torch.nn.Parameter(torch.zeros(len(seeds), 1, n_out))
                    self.weights[key_w].data[seed_index] = w
        if not spec.discrete:
            self.weights["actor_logstd"] = torch.nn.Parameter(torch.zeros(len(seeds), 1, spec.act_dim))

    @property
    def seeds(self) -> int:
        return self.weights["actor_w0"].shape[0]

    def _mlp(self, net: str, x: torch.Tensor) -> torch.Tensor:
        w = self.weights
        h = torch.tanh(torch.baddbmm(w[f"{net}_b0"], x, w[f"{net}_w0"]))
        h = torch.tanh(torch.baddbmm(w[f"{net}_b1"], h, w[f"{net}_w1"]))
        return torch.baddbmm(w[f"{net}_b2"], h, w[f"{net}_w2"])

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` is ``[S, N, obs_dim]``; returns ``[S, N]``."""
        return self._mlp("critic", obs).squeeze(-1)

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits ``[S, N, A]`` (discrete) or the Gaussian mean ``[S, N, A]`` (continuous)."""
        return self._mlp("actor", obs)

    def actor_parameters(self) -> list[torch.nn.Parameter]:
        return [p for k, p in self.weights.items() if k.startswith("actor")]

    def critic_parameters(self) -> list[torch.nn.Parameter]:
        return [p for k, p in self.weights.items() if k.startswith("critic")]

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {k: p.detach().cpu().numpy().copy() for k, p in self.weights.items()}

    @classmethod
    def from_numpy(cls, spec: Spec, arrays: dict[str, np.ndarray]) -> Ensemble:
        seeds = arrays["actor_w0"].shape[0]
        model = cls(spec, list(range(seeds)))
        with torch.no_grad():
            for k, p in model.weights.items():
                if k not in arrays or arrays[k].shape != tuple(p.shape):
                    raise ValueError(f"weights file lacks {k} of shape {tuple(p.shape)}")
                p.copy_(torch.from_numpy(np.asarray(arrays[k], dtype=np.float32)))
        return model


def _gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, logstd: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian, summed over the action dimensions."""
    return (-((actions - mean) ** 2) / (2 * logstd.exp() ** 2) - logstd - 0.5 * math.log(2 * math.pi)).sum(-1)


def distribution_stats(
    model: Ensemble, obs: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability and entropy of ``actions`` under the current policy, each ``[S, N]``."""
    params = model.policy_params(obs)
    if model.spec.discrete:
        logits = params - params.logsumexp(-1, keepdim=True)
        logp = logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(logits.exp() * logits).sum(-1)
        return logp, entropy
    logstd = model.weights["actor_logstd"].expand_as(params)
    entropy = (0.5 + 0.5 * math.log(2 * math.pi) + logstd).sum(-1)
    return _gaussian_log_prob(actions, params, logstd), entropy


@torch.no_grad()
def sample_actions(
    model: Ensemble, obs: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample actions; returns ``(actions, logp, value)`` for ``[S, N, obs_dim]`` observations."""
    params = model.policy_params(obs)
    value = model.value(obs)
    if model.spec.discrete:
        logits = params - params.logsumexp(-1, keepdim=True)
        # Gumbel-max: one uniform draw per logit, cheaper than Categorical on small batches.
        u = torch.rand(logits.shape, generator=generator).clamp_(1e-12, 1.0)
        actions = (logits - torch.log(-torch.log(u))).argmax(-1)
        logp = logits.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return actions, logp, value
    logstd = model.weights["actor_logstd"].expand_as(params)
    actions = params + logstd.exp() * torch.randn(params.shape, generator=generator)
    return actions, _gaussian_log_prob(actions, params, logstd), value
