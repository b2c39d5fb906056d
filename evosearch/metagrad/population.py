"""A population of agents learning one task with the rule being tuned, at staggered ages.

Why a population at different ages (as LPG and DiscoRL train theirs): constants tuned only on
young agents are good for the start of training and nothing else. Agent ``p`` of ``P`` starts
at ``p/P`` of its lifetime (the harness's training length for the task), ages one iteration per
meta-step, and is replaced by a newly initialised agent when its lifetime ends, so at any
meta-step the meta-gradient averages over the whole of a training run. An agent's learning
rate anneals with its age as the harness's does, and the rule sees its ``progress``.

Everything lives on one device as batched tensors; the environment is torch-native, so a
rollout never leaves the device.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from evosearch.envs.backend import make_env
from evosearch.metagrad.inner import AdamState, Weights, functional
from evosearch.train import harness
from evosearch.train.networks import Ensemble, distribution_stats, sample_actions
from evosearch.train.rule import gae


@dataclass
class Rollout:
    """One iteration's experience of every agent, seed-major: ``[P, T*N, ...]`` per field.

    ``logp`` and ``value`` are the behaviour policy's and critic's; ``adv`` and ``ret`` the
    targets the rule trains on (filled by :meth:`Population.targets`).
    """

    obs: torch.Tensor
    act: torch.Tensor
    logp: torch.Tensor
    value: torch.Tensor
    adv: torch.Tensor
    ret: torch.Tensor
    episode_return: torch.Tensor  # [P]: mean return of episodes that ended in it (NaN where none)

    def fields(self) -> dict[str, torch.Tensor]:
        return {"obs": self.obs, "act": self.act, "logp": self.logp, "value": self.value, "adv": self.adv,
                "ret": self.ret}


class Population:
    """``size`` agents on ``config``'s task; ``weights``/``adam``/``age`` are the agents' state."""

    def __init__(self, config: harness.TrainConfig, size: int, seed: int, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.config, self.size, self.seed = config, size, seed
        self.device, self.dtype = torch.device(device), dtype
        self.env = make_env(config.env_id, size * config.num_envs, seed=seed * 7919 + 3, backend="native",
                            device=self.device)
        self.spec = replace(self.env.spec, hidden=config.hidden)
        self.lifetime = max(1, config.total_steps // (config.num_envs * config.num_steps))
        self.births = 0
        self.model = Ensemble(self.spec, self._new_seeds(size), device=self.device, dtype=dtype)
        self.weights: Weights = {k: w.detach().clone() for k, w in self.model.weights.items()}
        self.adam = AdamState.zeros(self.weights)
        self.age = torch.tensor([p * self.lifetime // size for p in range(size)], device=self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed * 104729 + 17)
        self.obs = self._obs(self.env.reset())
        self.running = torch.zeros(size, config.num_envs, device=self.device, dtype=dtype)

    @property
    def updates_per_iteration(self) -> int:
        return self.config.update_epochs * self.config.num_minibatches

    def progress(self) -> torch.Tensor:
        return (self.age.to(self.dtype) / self.lifetime).clamp(max=1.0)

    def learning_rate(self) -> torch.Tensor:
        if not self.config.anneal_lr:
            return torch.full((self.size,), self.config.learning_rate, dtype=self.dtype, device=self.device)
        return self.config.learning_rate * (1.0 - self.progress())

    def _new_seeds(self, count: int) -> list[int]:
        seeds = [self.seed * 1_000_003 + self.births + i for i in range(count)]
        self.births += count
        return seeds

    def _obs(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.view(self.size, self.config.num_envs, -1).to(self.dtype)

    @torch.no_grad()
    def rollout(self, weights: Weights) -> Rollout:
        """Act ``num_steps`` steps in every agent's envs with ``weights`` (detached); targets by GAE."""
        view = functional(self.model, {k: w.detach() for k, w in weights.items()})
        cfg, P, N = self.config, self.size, self.config.num_envs
        act_shape = () if self.spec.discrete else (self.spec.act_dim,)
        obs_list, act_list, logp_list, steps = [], [], [], []
        actor = view.folded("actor")
        for _ in range(cfg.num_steps):
            actions, logp = sample_actions(view, self.obs, self.generator, actor)
            step = self.env.step(actions.view((P * N,) + act_shape))
            obs_list.append(self.obs)
            act_list.append(actions)
            logp_list.append(logp)
            steps.append(step)
            self.obs = self._obs(step.obs)
        obs, act, logp = torch.stack(obs_list), torch.stack(act_list), torch.stack(logp_list)
        reward, terminated, truncated, _ = harness._stack_steps(steps, P, N)
        reward = reward.to(self.dtype)
        sums, counts, self.running = harness.ended_episode_returns(reward, terminated | truncated, self.running)
        episode_return = torch.where(counts > 0, sums / counts.clamp(min=1), torch.nan)
        T = cfg.num_steps
        value = harness._time_major(view.value(harness._seed_major(obs)), T)
        bootstrap = truncated & ~terminated
        if bool(bootstrap.any()):
            final_obs = torch.stack([s.final_obs for s in steps]).view(T, P, N, -1).to(self.dtype)
            reward = reward + cfg.gamma * harness._time_major(view.value(harness._seed_major(final_obs)), T) * bootstrap
        done = (terminated | truncated).to(self.dtype)
        self._last = (reward, value, done, view.value(self.obs))
        adv = gae(reward, value, done, self._last[3], cfg.gamma, cfg.gae_lambda)
        major = harness._seed_major
        return Rollout(obs=major(obs), act=major(act), logp=major(logp), value=major(value), adv=major(adv),
                       ret=major(adv + value), episode_return=episode_return)

    def retarget(self, rollout: Rollout, advantages) -> Rollout:
        """The rollout with the rule's own advantages, if it defines them (no gradient flows through them)."""
        reward, value, done, last_value = self._last
        with torch.no_grad():
            adv = advantages(reward, value, done, last_value, self.config.gamma, self.config.gae_lambda)
        major = harness._seed_major
        return replace(rollout, adv=major(adv), ret=major(adv + value))

    def minibatch_order(self) -> list[torch.Tensor]:
        """Index tensors ``[P, M]`` for one iteration's updates: shuffled epochs of minibatches."""
        cfg = self.config
        batch = cfg.num_steps * cfg.num_envs
        size = batch // cfg.num_minibatches
        order = []
        for _ in range(cfg.update_epochs):
            keys = torch.rand(self.size, batch, generator=self.generator, device=self.device)
            order.extend(keys.argsort(1)[:, : size * cfg.num_minibatches].split(size, dim=1))
        return order

    def advance(self, weights: Weights, adam: AdamState) -> torch.Tensor:
        """Keep the updated agents, one iteration older; replace those whose lifetime ended. Returns who was."""
        self.weights = {k: w.detach() for k, w in weights.items()}
        self.adam = adam.detached()
        self.age = self.age + 1
        expired = self.age >= self.lifetime
        if bool(expired.any()):
            rows = expired.nonzero().flatten().tolist()
            fresh = Ensemble(self.spec, self._new_seeds(len(rows)), device=self.device, dtype=self.dtype)
            for i, row in enumerate(rows):
                for k, w in self.weights.items():
                    w[row] = fresh.weights[k][i].detach()
                for moments in (self.adam.m, self.adam.v):
                    for x in moments.values():
                        x[row] = 0
                self.adam.step[row] = 0
                self.age[row] = 0
        return expired

    def close(self) -> None:
        self.env.close()

    # -- state carried between sandboxed jobs (plain arrays) -------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        out = {f"w.{k}": w.cpu().numpy() for k, w in self.weights.items()}
        out |= {f"m.{k}": x.cpu().numpy() for k, x in self.adam.m.items()}
        out |= {f"v.{k}": x.cpu().numpy() for k, x in self.adam.v.items()}
        out |= {"adam_step": self.adam.step.cpu().numpy(), "age": self.age.cpu().numpy(),
                "births": np.array(self.births)}
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore agents saved by :meth:`state`; shapes must match this population's."""
        def tensor(key: str, like: torch.Tensor) -> torch.Tensor:
            if key not in arrays or tuple(arrays[key].shape) != tuple(like.shape):
                raise ValueError(f"saved population state lacks {key} of shape {tuple(like.shape)}")
            return torch.from_numpy(np.asarray(arrays[key])).to(like.device, like.dtype)

        self.weights = {k: tensor(f"w.{k}", w) for k, w in self.weights.items()}
        self.adam = AdamState({k: tensor(f"m.{k}", x) for k, x in self.adam.m.items()},
                              {k: tensor(f"v.{k}", x) for k, x in self.adam.v.items()},
                              tensor("adam_step", self.adam.step))
        self.age = tensor("age", self.age)
        self.births = int(arrays.get("births", np.array(self.births)))


def policy_objective(model: Ensemble, weights: Weights, rollout: Rollout) -> torch.Tensor:
    """The meta-objective: the updated agents' policy-gradient surrogate on fresh experience.

    ``rollout`` was collected by the updated agents themselves (``logp`` is theirs, detached), so
    at the current constants the ratio is 1 and the gradient of this objective through
    ``weights`` is A2C's policy gradient, with advantages normalised per agent so that agents and
    tasks weigh alike. Its value at nearby constants (the same experience, other weights) is what
    evolution strategies difference: both methods estimate the derivative of one function.
    """
    adv = rollout.adv
    adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
    logp, _ = distribution_stats(functional(model, weights), rollout.obs, rollout.act)
    return (torch.exp(logp - rollout.logp) * adv).mean()
