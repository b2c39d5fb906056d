"""Train S seeds of one rule together on one EnvPool task, CleanRL ppo.py style.

Read it top to bottom like CleanRL: rollout, advantages, epochs of shuffled minibatches.
What differs: every tensor carries a leading seed axis ``S`` (one batched ensemble instead of
S runs), the autoreset transitions of EnvPool are masked out, truncated episodes bootstrap
from the value of their final observation, and the loss is the candidate rule's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from evosearch.envs.vector import VectorEnv
from evosearch.train.networks import Ensemble, distribution_stats, sample_actions
from evosearch.train.rule import Rule, RuleError, compute_advantages, per_seed_losses


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of the harness; defaults are CleanRL ppo.py's."""

    env_id: str
    total_steps: int  # environment steps per seed
    num_envs: int = 4
    num_steps: int = 128
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    max_grad_norm: float = 0.5
    hidden: int = 64
    curve_points: int = 20

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """What a training job hands back: weights for the trusted scorer, and diagnostics."""

    weights: dict[str, np.ndarray]
    curve_steps: list[int]
    curves: list[list[float]]  # per seed: mean episodic return of episodes ended by each point
    env_steps: int  # per seed
    wall_s: float
    used_vmap: bool
    extra: dict = field(default_factory=dict)


class NonFiniteLoss(RuleError):
    """The rule's loss or its gradients became NaN or infinite during training."""


def train(rule: Rule, cfg: TrainConfig, seeds: list[int]) -> TrainResult:
    """Train ``len(seeds)`` agents with ``rule`` and return their weights and learning curves."""
    start = time.perf_counter()
    S, N, T = len(seeds), cfg.num_envs, cfg.num_steps
    env = VectorEnv(cfg.env_id, S * N, seed=int(seeds[0]) * 7919 + 1)
    spec = env.spec.__class__(env.spec.obs_dim, env.spec.act_dim, env.spec.discrete, cfg.hidden)
    model = Ensemble(spec, list(seeds))
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.learning_rate, eps=1e-5)
    generator = torch.Generator().manual_seed(int(seeds[0]) * 104729 + len(seeds))
    iterations = max(1, cfg.total_steps // (N * T))

    act_shape = () if spec.discrete else (spec.act_dim,)
    obs_buf = torch.zeros(T, S, N, spec.obs_dim)
    act_buf = torch.zeros((T, S, N) + act_shape, dtype=torch.long if spec.discrete else torch.float32)
    logp_buf, val_buf = torch.zeros(T, S, N), torch.zeros(T, S, N)
    rew_buf, done_buf, real_buf = torch.zeros(T, S, N), torch.zeros(T, S, N), torch.zeros(T, S, N, dtype=torch.bool)

    obs = torch.from_numpy(env.reset()).view(S, N, -1)
    episode_return = np.zeros(S * N)
    ended_sum, ended_count = np.zeros(S), np.zeros(S)
    last_curve = np.full(S, np.nan)
    curve_every = max(1, iterations // cfg.curve_points)
    curve_steps: list[int] = []
    curves: list[list[float]] = [[] for _ in range(S)]

    for iteration in range(iterations):
        if cfg.anneal_lr:
            optimizer.param_groups[0]["lr"] = cfg.learning_rate * (1.0 - iteration / iterations)

        # Rollout: T steps of all S*N environments, one batched forward pass per step.
        for t in range(T):
            actions, logp, value = sample_actions(model, obs, generator)
            obs_buf[t], act_buf[t], logp_buf[t], val_buf[t] = obs, actions, logp, value
            next_obs, reward, terminated, truncated, real = env.step(actions.reshape((S * N,) + act_shape).numpy())
            next_obs_t = torch.from_numpy(next_obs).view(S, N, -1)
            reward_t = torch.from_numpy(reward).view(S, N)
            if truncated.any():  # bootstrap time-limit ends from the final observation's value
                with torch.no_grad():
                    final_value = model.value(next_obs_t)
                trunc_t = torch.from_numpy(truncated & ~terminated).view(S, N)
                reward_t = reward_t + cfg.gamma * final_value * trunc_t
            rew_buf[t] = reward_t
            done_buf[t] = torch.from_numpy(terminated | truncated).view(S, N).float()
            real_buf[t] = torch.from_numpy(real).view(S, N)
            episode_return += reward * real
            ended = terminated | truncated
            if ended.any():
                per_seed = ended.reshape(S, N)
                ended_sum += np.where(per_seed, episode_return.reshape(S, N), 0.0).sum(1)
                ended_count += per_seed.sum(1)
                episode_return[ended] = 0.0
            obs = next_obs_t

        if (iteration + 1) % curve_every == 0 or iteration == iterations - 1:
            have = ended_count > 0
            last_curve = np.where(have, ended_sum / np.maximum(ended_count, 1), last_curve)
            ended_sum[:], ended_count[:] = 0.0, 0.0
            curve_steps.append((iteration + 1) * N * T)
            for s in range(S):
                curves[s].append(float(last_curve[s]) if np.isfinite(last_curve[s]) else 0.0)

        # Advantages over the rollout (the rule may replace GAE).
        with torch.no_grad():
            last_value = model.value(obs)
            advantages = compute_advantages(rule, rew_buf, val_buf, done_buf, last_value, cfg.gamma,
                                            cfg.gae_lambda)
            returns = advantages + val_buf

        # Flatten to [S, T*N]; shuffle each seed's real transitions, drop the autoreset ones.
        B = T * N
        b_obs, b_act, b_logp, b_val = (_seed_major(x) for x in (obs_buf, act_buf, logp_buf, val_buf))
        b_adv, b_ret, b_real = (_seed_major(x) for x in (advantages, returns, real_buf))
        usable = int(b_real.sum(1).min())
        minibatch = usable // cfg.num_minibatches
        progress = torch.full((S,), iteration / iterations)
        for _ in range(cfg.update_epochs):
            keys = torch.rand(S, B, generator=generator) + (~b_real).float() * 2.0
            order = keys.argsort(1)[:, : minibatch * cfg.num_minibatches]
            for mb in order.split(minibatch, dim=1):
                mb_obs, mb_act = _take(b_obs, mb), _take(b_act, mb)
                new_logp, entropy = distribution_stats(model, mb_obs, mb_act)
                new_value = model.value(mb_obs)
                fields = {
                    "logp": new_logp, "old_logp": _take(b_logp, mb), "adv": _take(b_adv, mb),
                    "ret": _take(b_ret, mb), "value": new_value, "old_value": _take(b_val, mb),
                    "entropy": entropy, "progress": progress,
                }
                losses = per_seed_losses(rule, fields)
                if not torch.isfinite(losses).all():
                    raise NonFiniteLoss(f"loss became non-finite at iteration {iteration} of {iterations}")
                optimizer.zero_grad(set_to_none=False)
                losses.sum().backward()
                _clip_per_seed(params, cfg.max_grad_norm)
                optimizer.step()

    env.close()
    return TrainResult(
        weights=model.to_numpy(),
        curve_steps=curve_steps,
        curves=curves,
        env_steps=iterations * N * T,
        wall_s=time.perf_counter() - start,
        used_vmap=bool(rule.use_vmap),
    )


def _seed_major(x: torch.Tensor) -> torch.Tensor:
    """``[T, S, N, ...]`` rollout buffer -> ``[S, T*N, ...]``, one row of samples per seed."""
    steps, seeds, envs = x.shape[:3]
    return x.transpose(0, 1).reshape(seeds, steps * envs, *x.shape[3:])


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-seed gather of samples: ``x[s, index[s]]`` for ``[S, B, ...]`` data and ``[S, M]`` indices."""
    shaped = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(*index.shape, *x.shape[2:])
    return x.gather(1, shaped)


def _clip_per_seed(params: list[torch.Tensor], max_norm: float) -> None:
    """Clip each seed's gradient norm separately, as S separate CleanRL runs would."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.stack([g.pow(2).reshape(g.shape[0], -1).sum(1) for g in grads]).sum(0)
    if not torch.isfinite(sq).all():
        raise NonFiniteLoss("gradients became non-finite")
    scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
