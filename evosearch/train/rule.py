"""Load a rule program and apply its loss to a batch of seeds.

A rule is untrusted source, so it is only ever executed inside a sandboxed job; this module
is what such a job uses to turn the source into callables. Seeds are trained together, so
the loss is applied per seed: with ``torch.func.vmap`` when the rule allows it (one call
for all seeds) and a per-seed loop otherwise (data-dependent Python control flow, ``.item()``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from evosearch import allowlist
from evosearch.program import ALLOWED_IMPORTS

#: Per-sample fields of the batch a rule's ``loss(b)`` receives (1-d over the minibatch).
SAMPLE_FIELDS = ("logp", "old_logp", "adv", "ret", "value", "old_value", "entropy")


class Batch:
    """Attribute access to the minibatch fields (``b.logp``), as the rule contract promises."""

    __slots__ = ("logp", "old_logp", "adv", "ret", "value", "old_value", "entropy", "progress")

    def __init__(self, fields: dict[str, torch.Tensor]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields[name])

    def __getitem__(self, name: str) -> torch.Tensor:
        return getattr(self, name)


class RuleError(Exception):
    """The rule broke its contract (wrong shape, non-finite loss, missing function)."""


class TrainableRule(Protocol):
    """What the harness and the probe train with: a rule loaded here, or one in its own process."""

    use_vmap: bool | None

    def losses(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-seed losses ``[S]`` of ``[S, M]`` fields, differentiable through logp, value and entropy."""
        ...

    def compute_advantages(self, rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
                           last_value: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
        """The rule's advantages over a ``[T, S, N]`` rollout (GAE when it defines none)."""
        ...


@dataclass
class Rule:
    """A loaded rule: its loss and optional advantage estimator."""

    loss: Callable[[Batch], torch.Tensor]
    advantages: Callable[..., torch.Tensor] | None = None
    use_vmap: bool | None = None  # decided on first use
    module: types.ModuleType | None = field(default=None, repr=False)

    def losses(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        return per_seed_losses(self, fields)

    def compute_advantages(self, rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
                           last_value: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
        return compute_advantages(self, rewards, values, dones, last_value, gamma, lam)


def load_rule(source: str, filename: str = "<rule>", *, minimal_builtins: bool = True,
              preset: dict[str, object] | None = None) -> Rule:
    """Execute rule source in a fresh module with minimal builtins and pick out its entry points.

    In an evaluation this runs in the rule's own process (:mod:`evosearch.train.rule_process`),
    never in the one that trains. ``minimal_builtins=False`` exists to test the OS layers alone.
    ``preset``: module globals defined before the source runs (metatune's ``CONSTANTS``, which a
    function called at import may already read).
    """
    module = types.ModuleType("evosearch_candidate_rule")
    module.__file__ = filename
    module.__dict__.update(preset or {})
    if minimal_builtins:
        module.__dict__["__builtins__"] = allowlist.minimal_builtins(ALLOWED_IMPORTS)
    code = compile(source, filename, "exec")
    exec(code, module.__dict__)  # noqa: S102 - only ever called inside a sandboxed job
    loss = module.__dict__.get("loss")
    if not callable(loss):
        raise RuleError("the rule defines no function `loss(b)`")
    advantages = module.__dict__.get("advantages")
    if advantages is not None and not callable(advantages):
        raise RuleError("`advantages` is defined but is not a function")
    return Rule(loss=loss, advantages=advantages, module=module)


def _check_scalar(value: object, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise RuleError(f"loss(b) returned {type(value).__name__}, expected a 0-d torch.Tensor ({where})")
    if value.dim() != 0:
        raise RuleError(
            f"loss(b) returned a tensor of shape {tuple(value.shape)}, expected a 0-d tensor ({where})"
        )
    return value


def per_seed_losses(rule: Rule, fields: dict[str, torch.Tensor]) -> torch.Tensor:
    """Return the rule's loss for each seed, shape ``[S]``.

    ``fields`` holds ``[S, M]`` tensors for the sample fields and ``[S]`` for ``progress``.
    Gradients of the sum reach each seed's own parameters only, since seeds share none.
    """
    if rule.use_vmap is not False:
        try:
            out = torch.func.vmap(lambda f: rule.loss(Batch(f)))(fields)
        except (RuleError, MemoryError):
            raise  # the rule's own failure, not an incompatibility with vmap
        except Exception:
            if rule.use_vmap:
                raise
            rule.use_vmap = False
        else:
            if not isinstance(out, torch.Tensor) or out.shape != (fields["logp"].shape[0],):
                shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
                raise RuleError(f"loss(b) returned a tensor of shape {shape}, expected a 0-d tensor")
            rule.use_vmap = True
            return out
    seeds = fields["logp"].shape[0]
    losses = []
    for s in range(seeds):
        value = rule.loss(Batch({k: v[s] for k, v in fields.items()}))
        losses.append(_check_scalar(value, f"seed {s}"))
    return torch.stack(losses)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimation over ``[T, ...]`` tensors.

    ``dones[t]`` says the episode ended with step ``t``, so step ``t`` does not bootstrap from
    ``values[t + 1]``. Truncated episodes are bootstrapped by the harness through the reward.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    for t in reversed(range(steps)):
        next_value = last_value if t == steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        last = delta + gamma * lam * not_done * last
        advantages[t] = last
    return advantages


def compute_advantages(
    rule: Rule,
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """The rule's ``advantages(...)`` if it defines one, else GAE; its output is checked."""
    if rule.advantages is None:
        return gae(rewards, values, dones, last_value, gamma, lam)
    adv = rule.advantages(rewards, values, dones, last_value, gamma, lam)
    if not isinstance(adv, torch.Tensor) or adv.shape != rewards.shape:
        shape = tuple(adv.shape) if isinstance(adv, torch.Tensor) else type(adv).__name__
        raise RuleError(f"advantages(...) returned {shape}, expected a tensor of shape {tuple(rewards.shape)}")
    if not torch.isfinite(adv).all():
        raise RuleError("advantages(...) returned NaN or infinite values")
    return adv.detach().to(rewards.dtype)
