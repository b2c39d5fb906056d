"""Train S seeds of one rule together on one task, CleanRL ppo.py style.

Read it top to bottom like CleanRL: rollout, advantages, epochs of shuffled minibatches.
What differs: every tensor carries a leading seed axis ``S`` (one batched ensemble instead of
S runs), the loss is the candidate rule's, truncated episodes bootstrap from the value of
their final observation, and EnvPool's autoreset transitions are masked out. Nothing in the
loop waits on the host per step: the rollout is collected as tensors on the training device
(a torch-native env keeps even the environment there), and episode returns are summed after
the rollout, so on a GPU the CPU only queues work.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from evosearch.envs.backend import make_env
from evosearch.train.networks import Ensemble, distribution_stats, sample_actions
from evosearch.train.rule import RuleError, TrainableRule


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
    backend: str = "auto"  # env backend: auto (torch-native where it exists), native or envpool

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
    backend: str = ""
    device: str = "cpu"
    extra: dict = field(default_factory=dict)


class NonFiniteLoss(RuleError):
    """The rule's loss or its gradients became NaN or infinite during training."""


def train(rule: TrainableRule, cfg: TrainConfig, seeds: list[int], device: str | torch.device = "cpu") -> TrainResult:
    """Train ``len(seeds)`` agents with ``rule`` and return their weights and learning curves."""
    start = time.perf_counter()
    device = torch.device(device)
    S, N, T = len(seeds), cfg.num_envs, cfg.num_steps
    env = make_env(cfg.env_id, S * N, seed=int(seeds[0]) * 7919 + 1, backend=cfg.backend, device=device)
    spec = replace(env.spec, hidden=cfg.hidden)
    model = Ensemble(spec, list(seeds), device=device)
    optimizer = torch.optim.Adam([model.flat], lr=cfg.learning_rate, eps=1e-5)
    generator = torch.Generator(device=device).manual_seed(int(seeds[0]) * 104729 + len(seeds))
    iterations = max(1, cfg.total_steps // (N * T))
    act_shape = () if spec.discrete else (spec.act_dim,)

    obs = env.reset().view(S, N, -1)
    running_return = torch.zeros(S, N, device=device)
    ended_sum, ended_count = torch.zeros(S, device=device), torch.zeros(S, device=device)
    last_curve = [0.0] * S
    curve_every = max(1, iterations // cfg.curve_points)
    curve_steps: list[int] = []
    curves: list[list[float]] = [[] for _ in range(S)]
    finite = torch.ones((), dtype=torch.bool, device=device)

    for iteration in range(iterations):
        if cfg.anneal_lr:
            optimizer.param_groups[0]["lr"] = cfg.learning_rate * (1.0 - iteration / iterations)

        # Rollout: T steps of all S*N environments, one batched forward pass per step.
        collected: dict[str, list] = {k: [] for k in ("obs", "act", "logp", "step")}
        with torch.no_grad():
            actor = model.folded("actor")
        for _ in range(T):
            actions, logp = sample_actions(model, obs, generator, actor)
            step = env.step(actions.view((S * N,) + act_shape))
            for key, x in zip(("obs", "act", "logp", "step"), (obs, actions, logp, step), strict=True):
                collected[key].append(x)
            obs = step.obs.view(S, N, -1)
        obs_buf, act_buf, logp_buf = (torch.stack(collected[k]) for k in ("obs", "act", "logp"))
        rew_buf, terminated, truncated, real_buf = _stack_steps(collected["step"], S, N)

        # Episode returns (undiscounted, real transitions only) for the learning curves.
        sums, counts, running_return = ended_episode_returns(rew_buf, terminated | truncated, running_return)
        ended_sum += sums
        ended_count += counts
        if (iteration + 1) % curve_every == 0 or iteration == iterations - 1:
            means = (ended_sum / ended_count.clamp(min=1)).tolist()
            have = (ended_count > 0).tolist()
            last_curve = [m if h else last for m, h, last in zip(means, have, last_curve, strict=True)]
            ended_sum.zero_()
            ended_count.zero_()
            curve_steps.append((iteration + 1) * N * T)
            for s in range(S):
                curves[s].append(float(last_curve[s]))

        # Values of the whole rollout in one batched critic pass (large matrices, not T small
        # ones); advantages over it (the rule may replace GAE); time-limit ends bootstrap from
        # the value of their final observation.
        with torch.no_grad():
            val_buf = _time_major(model.value(_seed_major(obs_buf)), T)
            bootstrap = truncated & ~terminated
            if bool(bootstrap.any()):
                final_obs = torch.stack([s.final_obs for s in collected["step"]]).view(T, S, N, -1)
                final_value = _time_major(model.value(_seed_major(final_obs)), T)
                rew_buf = rew_buf + cfg.gamma * final_value * bootstrap
            done_buf = (terminated | truncated).float()
            last_value = model.value(obs)
            advantages = rule.compute_advantages(rew_buf, val_buf, done_buf, last_value, cfg.gamma,
                                                 cfg.gae_lambda)
            returns = advantages + val_buf

        # Flatten to [S, T*N]; shuffle each seed's real transitions, drop the autoreset ones.
        B = T * N
        b_obs, b_act, b_logp, b_val = (_seed_major(x) for x in (obs_buf, act_buf, logp_buf, val_buf))
        b_adv, b_ret = _seed_major(advantages), _seed_major(returns)
        if real_buf is None:
            usable, not_real = B, None
        else:
            b_real = _seed_major(real_buf)
            usable, not_real = int(b_real.sum(1).min()), (~b_real).float() * 2.0
        minibatch = usable // cfg.num_minibatches
        progress = torch.full((S,), iteration / iterations, device=device)
        for _ in range(cfg.update_epochs):
            keys = torch.rand(S, B, generator=generator, device=device)
            if not_real is not None:
                keys += not_real
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
                losses = rule.losses(fields)
                model.zero_grad()
                losses.sum().backward()
                finite &= torch.isfinite(losses).all() & _clip_per_seed(model.flat_grad, cfg.max_grad_norm)
                optimizer.step()
        if not bool(finite):  # one check per iteration, not a host round trip per minibatch
            raise NonFiniteLoss(f"loss or gradients became non-finite at iteration {iteration} of {iterations}")

    env.close()
    return TrainResult(
        weights=model.to_numpy(),
        curve_steps=curve_steps,
        curves=curves,
        env_steps=iterations * N * T,
        wall_s=time.perf_counter() - start,
        used_vmap=bool(rule.use_vmap),
        backend=env.backend,
        device=str(device),
    )


def _stack_steps(steps: list, seeds: int, envs: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                  torch.Tensor | None]:
    """Per-step transitions -> ``[T, S, N]`` rewards, terminated, truncated and real (or None)."""
    shape = (len(steps), seeds, envs)
    reward = torch.stack([s.reward for s in steps]).view(shape)
    terminated = torch.stack([s.terminated for s in steps]).view(shape)
    truncated = torch.stack([s.truncated for s in steps]).view(shape)
    if steps[0].real is None:
        return reward, terminated, truncated, None
    real = torch.stack([s.real for s in steps]).view(shape)
    return reward * real, terminated & real, truncated & real, real


def ended_episode_returns(
    rewards: torch.Tensor, ended: torch.Tensor, running: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum and count per seed of the returns of episodes that ended in this rollout.

    ``rewards`` and ``ended`` are ``[T, S, N]``; ``running`` ``[S, N]`` is the return so far of
    the episodes in progress when the rollout began. Returns ``(sum [S], count [S], running)``
    with ``running`` carried into the next rollout. Done with cumulative sums instead of a
    loop over T: an episode ending at step t earned ``R[t] - R[previous end]``, with ``R`` the
    cumulative reward (a first episode adds what it had earned before the rollout).
    """
    steps = rewards.shape[0]
    cumulative = rewards.cumsum(0)
    index = torch.arange(steps, device=rewards.device).view(steps, 1, 1).expand_as(ended)
    last_end = torch.where(ended, index, -1).cummax(0).values
    previous_end = torch.cat([torch.full_like(last_end[:1], -1), last_end[:-1]])
    base = torch.where(previous_end >= 0, cumulative.gather(0, previous_end.clamp(min=0)), -running)
    episode_return = cumulative - base  # return of the episode in progress at t, through t
    ended_f = ended.float()
    sums = (episode_return * ended_f).sum((0, 2))
    counts = ended_f.sum((0, 2))
    return sums, counts, episode_return[-1] * (1.0 - ended_f[-1])


def _seed_major(x: torch.Tensor) -> torch.Tensor:
    """``[T, S, N, ...]`` rollout buffer -> ``[S, T*N, ...]``, one row of samples per seed."""
    steps, seeds, envs = x.shape[:3]
    return x.transpose(0, 1).reshape(seeds, steps * envs, *x.shape[3:])


def _time_major(x: torch.Tensor, steps: int) -> torch.Tensor:
    """``[S, T*N]`` -> ``[T, S, N]``, the inverse of ``_seed_major`` for per-sample values."""
    seeds = x.shape[0]
    return x.view(seeds, steps, -1).transpose(0, 1)


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-seed gather of samples: ``x[s, index[s]]`` for ``[S, B, ...]`` data and ``[S, M]`` indices."""
    shaped = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(*index.shape, *x.shape[2:])
    return x.gather(1, shaped)


def _clip_per_seed(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Clip each seed's gradient norm separately (``grad`` is ``[S, P]``), as S CleanRL runs would.

    Returns a 0-d bool tensor saying whether every gradient was finite (checked later, so the
    device is not waited on here).
    """
    norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad.mul_((max_norm / (norm + 1e-6)).clamp_(max=1.0))
    return torch.isfinite(norm).all()
