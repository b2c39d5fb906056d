"""Agent updates that autograd can differentiate through: functional networks, clipping and Adam.

The harness updates its agents in place (``optimizer.step()``), which cuts the graph between
a rule's constants and the weights they produced. A meta-gradient needs the opposite: each
update is a function ``(weights, optimiser state, constants) -> new weights`` built from
tensors, so that the weights after K updates are differentiable in the constants. The
networks are the harness's own (:class:`~evosearch.train.networks.Ensemble`), evaluated on a
dict of weights that may carry a graph, so the agent trained here is the agent the evaluator
trains: same architecture, same initialisation, same clipping and Adam settings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from evosearch.train.networks import Ensemble, distribution_stats

#: torch.optim.Adam's defaults, with the harness's eps.
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-5
#: Inside the square root of Adam's second moment: d sqrt(v)/dv is infinite at v = 0, and a weight
#: whose gradient is exactly zero for a step would otherwise make the meta-gradient NaN.
SQRT_FLOOR = 1e-20

Weights = dict[str, torch.Tensor]


def functional(model: Ensemble, weights: Weights) -> Ensemble:
    """``model``'s networks computing with ``weights`` (tensors that may carry a graph)."""
    view = copy.copy(model)
    view.weights = weights
    return view


@dataclass
class AdamState:
    """Per-agent Adam moments and step counts (``step`` is ``[P]``: agents are at different ages)."""

    m: Weights
    v: Weights
    step: torch.Tensor

    @classmethod
    def zeros(cls, weights: Weights) -> AdamState:
        first = next(iter(weights.values()))
        return cls({k: torch.zeros_like(w) for k, w in weights.items()},
                   {k: torch.zeros_like(w) for k, w in weights.items()},
                   torch.zeros(first.shape[0], dtype=first.dtype, device=first.device))

    def detached(self) -> AdamState:
        return AdamState({k: x.detach() for k, x in self.m.items()}, {k: x.detach() for k, x in self.v.items()},
                         self.step.detach())


def _per_agent(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A ``[P]`` tensor shaped to broadcast against a ``[P, ...]`` weight."""
    return x.view(-1, *([1] * (like.dim() - 1)))


def clip_per_agent(grads: Weights, max_norm: float) -> Weights:
    """Scale each agent's gradient to norm at most ``max_norm``, as the harness's per-seed clip does."""
    squares = sum(g.pow(2).flatten(1).sum(1) for g in grads.values())
    scale = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    return {k: g * _per_agent(scale, g) for k, g in grads.items()}


def adam_step(weights: Weights, grads: Weights, state: AdamState, lr: torch.Tensor) -> tuple[Weights, AdamState]:
    """One Adam update per agent (``lr`` is ``[P]``), written out so it stays differentiable."""
    b1, b2 = BETAS
    step = state.step + 1
    new_w, new_m, new_v = {}, {}, {}
    for k, w in weights.items():
        g = grads[k]
        m = b1 * state.m[k] + (1 - b1) * g
        v = b2 * state.v[k] + (1 - b2) * g * g
        m_hat = m / _per_agent(1 - b1 ** step, w)
        v_hat = v / _per_agent(1 - b2 ** step, w)
        new_w[k] = w - _per_agent(lr, w) * m_hat / ((v_hat + SQRT_FLOOR).sqrt() + ADAM_EPS)
        new_m[k], new_v[k] = m, v
    return new_w, AdamState(new_m, new_v, step)


def rule_fields(model: Ensemble, weights: Weights, batch: dict[str, torch.Tensor], index: torch.Tensor,
                progress: torch.Tensor) -> dict[str, torch.Tensor]:
    """The fields a rule's ``loss(b)`` gets for the minibatch ``index`` (``[P, M]``) of a rollout."""
    view = functional(model, weights)
    take = {k: _take(v, index) for k, v in batch.items()}
    logp, entropy = distribution_stats(view, take["obs"], take["act"])
    return {"logp": logp, "old_logp": take["logp"], "adv": take["adv"], "ret": take["ret"],
            "value": view.value(take["obs"]), "old_value": take["value"], "entropy": entropy, "progress": progress}


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[p, index[p]]`` for ``[P, B, ...]`` data and ``[P, M]`` indices."""
    shaped = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(*index.shape, *x.shape[2:])
    return x.gather(1, shaped)
