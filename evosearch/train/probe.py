"""Smoke test and behavioural fingerprint of a rule, on one fixed probe batch.

The fingerprint hashes the rounded gradient a rule produces on the probe batch (its bytes,
not a sum), plus the advantages it computes on a probe rollout. Two spellings of one rule
collide; a term without parameters (``+ b.adv.abs().mean()``) changes nothing and collides,
correctly. The probe spreads ratios over 0.3-3.3 and advantages over both signs and several
scales so that clipping and sign-dependent branches are exercised: with ratios near 1,
PPO-clip and plain policy gradient would collide.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from evosearch.train.networks import Ensemble, Spec, distribution_stats
from evosearch.train.rule import RuleError, TrainableRule

PROBE_SAMPLES = 96
PROBE_PROGRESS = (0.1, 0.5, 0.9)
ROUND_DIGITS = 6


def _probe_fields(model: Ensemble, progress: float) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(20240607)
    obs = torch.randn(1, PROBE_SAMPLES, model.spec.obs_dim, generator=g, dtype=torch.float64)
    actions = torch.randint(0, model.spec.act_dim, (1, PROBE_SAMPLES), generator=g)
    logp, entropy = distribution_stats(model, obs, actions)
    spread = torch.linspace(-1.2, 1.2, PROBE_SAMPLES, dtype=torch.float64)
    log_ratio = spread[torch.randperm(PROBE_SAMPLES, generator=g)]
    adv = torch.cat([
        torch.randn(PROBE_SAMPLES // 2, generator=g, dtype=torch.float64) * 3.0,
        torch.randn(PROBE_SAMPLES - PROBE_SAMPLES // 2, generator=g, dtype=torch.float64) * 0.2 + 0.5,
    ])[torch.randperm(PROBE_SAMPLES, generator=g)]
    value = model.value(obs)
    return {
        "logp": logp,
        "old_logp": (logp.detach() - log_ratio).view(1, -1),
        "adv": adv.view(1, -1),
        "ret": (value.detach() + torch.randn(1, PROBE_SAMPLES, generator=g, dtype=torch.float64) * 2.0),
        "value": value,
        "old_value": value.detach() + torch.randn(1, PROBE_SAMPLES, generator=g, dtype=torch.float64) * 0.5,
        "entropy": entropy,
        "progress": torch.full((1,), progress, dtype=torch.float64),
    }


def _probe_rollout() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(777)
    steps, envs = 24, 4
    rewards = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    values = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    dones = (torch.rand(steps, envs, generator=g) < 0.15).double()
    last_value = torch.randn(envs, generator=g, dtype=torch.float64)
    return rewards, values, dones, last_value


def _rounded(x: np.ndarray) -> bytes:
    scale = float(np.abs(x).max()) if x.size else 0.0
    if scale == 0.0 or not np.isfinite(scale):
        return np.zeros(x.shape, dtype=np.int64).tobytes()
    q = np.rint(x / scale * 10**ROUND_DIGITS).astype(np.int64)
    return np.array([np.round(np.log10(scale), 3)]).tobytes() + q.tobytes()


def _flat_grad(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad.flatten() for p in params if p.grad is not None]
    return torch.cat(grads) if grads else torch.zeros(1, dtype=torch.float64)


def probe(rule: TrainableRule) -> dict:
    """Smoke-test ``rule`` and return its fingerprint; raises ``RuleError`` with the reason."""
    spec = Spec(obs_dim=5, act_dim=3, discrete=True, hidden=16)
    digest = hashlib.sha256()
    for progress in PROBE_PROGRESS:
        model = Ensemble(spec, [4242], dtype=torch.float64)
        fields = _probe_fields(model, progress)
        losses = rule.losses(fields)
        if losses.dtype not in (torch.float32, torch.float64):
            raise RuleError(f"loss(b) returned dtype {losses.dtype}, expected a floating-point tensor")
        if not torch.isfinite(losses).all():
            raise RuleError(f"loss(b) is {losses.item()} on the probe batch (progress={progress}): not finite")
        if not losses.requires_grad:
            raise RuleError("loss(b) does not depend on b.logp or b.value: no gradient reaches the networks")
        losses.sum().backward()
        actor_grad, critic_grad = _flat_grad(model.actor_parameters()), _flat_grad(model.critic_parameters())
        if not (torch.isfinite(actor_grad).all() and torch.isfinite(critic_grad).all()):
            raise RuleError(f"gradients of loss(b) are not finite on the probe batch (progress={progress})")
        if progress == PROBE_PROGRESS[0]:
            if not actor_grad.abs().sum() > 0:
                raise RuleError("no gradient reaches the policy network: the loss must depend on b.logp or b.entropy")
            if not critic_grad.abs().sum() > 0:
                raise RuleError("no gradient reaches the value network: the loss must depend on b.value")
        digest.update(_rounded(torch.cat([actor_grad, critic_grad]).numpy()))
    rewards, values, dones, last_value = _probe_rollout()
    adv = rule.compute_advantages(rewards, values, dones, last_value, 0.99, 0.95)
    digest.update(_rounded(adv.detach().double().numpy()))
    return {"fingerprint": digest.hexdigest()[:32], "vmap": bool(rule.use_vmap)}
