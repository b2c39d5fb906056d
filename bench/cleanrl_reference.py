"""Single-seed PPO on CartPole-v1, written like CleanRL's ppo.py: the yardstick for the harness.

Why this file exists: the batched harness (``evosearch.train.harness``) claims to train S seeds
faster than S separate runs of the loop everyone knows. To check that claim we need the loop
everyone knows, so this is CleanRL's ppo.py with only the gym vector env swapped for EnvPool
(4 envs, as in CleanRL's defaults). It is deliberately *not* improved:

* dones are handled as CleanRL does (``next_done = terminated | truncated``, no bootstrap of
  truncated episodes, and EnvPool's autoreset step, whose action is ignored, is learned from);
* actions are sampled through ``torch.distributions.Categorical``;
* one ``nn.Module`` per agent, one seed per run.

Left out: CleanRL's logging (TensorBoard, wandb, ``approx_kl``/``clipfrac`` diagnostics) and
``target_kl`` (off by default), which do not change what is learned. EnvPool gets
``num_threads=1`` like the harness's pool, so both use the same CPU budget; on a 2-core
machine that is also the faster setting for 4 CartPole envs (about 58 vs 105 us per step).

Read ``train_reference`` top to bottom beside CleanRL's ppo.py; the section comments match.
"""

from __future__ import annotations

import random
import time
import warnings
from typing import Any

import envpool
import numpy as np
import torch
from torch import nn
from torch.distributions.categorical import Categorical

ENV_ID = "CartPole-v1"
NUM_ENVS = 4
NUM_STEPS = 128
LEARNING_RATE = 2.5e-4
ANNEAL_LR = True
GAMMA = 0.99
GAE_LAMBDA = 0.95
NUM_MINIBATCHES = 4
UPDATE_EPOCHS = 4
NORM_ADV = True
CLIP_COEF = 0.2
CLIP_VLOSS = True
ENT_COEF = 0.01
VF_COEF = 0.5
MAX_GRAD_NORM = 0.5
BATCH_SIZE = NUM_ENVS * NUM_STEPS
MINIBATCH_SIZE = BATCH_SIZE // NUM_MINIBATCHES


def make_envs(num_envs: int, seed: int) -> Any:  # envpool builds its env classes at runtime
    """EnvPool in gymnasium mode, the way CleanRL's envpool scripts create it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # envpool warns about gym/gymnasium versions
        return envpool.make(ENV_ID, env_type="gymnasium", num_envs=num_envs, seed=seed, num_threads=1)


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    """CleanRL's init: orthogonal weights, constant bias."""
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """CleanRL's ppo.py Agent: separate 64-unit tanh MLPs for the critic and the actor."""

    def __init__(self, obs_dim: int, n_actions: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, n_actions), std=0.01),
        )

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(
        self, x: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


def train_reference(total_steps: int, seed: int) -> tuple[nn.Module, float]:
    """Train one agent for ``total_steps`` env steps; returns ``(agent, wall seconds)``.

    The wall time covers everything CleanRL's script does after argument parsing (env and
    agent creation included), so it is comparable with the harness's ``TrainResult.wall_s``.
    """
    start_time = time.perf_counter()
    num_iterations = max(1, total_steps // BATCH_SIZE)

    # TRY NOT TO MODIFY: seeding
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = torch.device("cpu")

    # env setup
    envs = make_envs(NUM_ENVS, seed)
    obs_shape = envs.observation_space.shape
    assert hasattr(envs.action_space, "n"), "only discrete action space is supported"

    agent = Agent(int(np.prod(obs_shape)), int(envs.action_space.n)).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=LEARNING_RATE, eps=1e-5)

    # ALGO Logic: Storage setup
    obs = torch.zeros((NUM_STEPS, NUM_ENVS) + obs_shape).to(device)
    actions = torch.zeros((NUM_STEPS, NUM_ENVS)).to(device)
    logprobs = torch.zeros((NUM_STEPS, NUM_ENVS)).to(device)
    rewards = torch.zeros((NUM_STEPS, NUM_ENVS)).to(device)
    dones = torch.zeros((NUM_STEPS, NUM_ENVS)).to(device)
    values = torch.zeros((NUM_STEPS, NUM_ENVS)).to(device)

    # TRY NOT TO MODIFY: start the game
    global_step = 0
    next_obs, _ = envs.reset()
    next_obs = torch.Tensor(next_obs).to(device)
    next_done = torch.zeros(NUM_ENVS).to(device)

    for iteration in range(1, num_iterations + 1):
        # Annealing the rate if instructed to do so.
        if ANNEAL_LR:
            frac = 1.0 - (iteration - 1.0) / num_iterations
            lrnow = frac * LEARNING_RATE
            optimizer.param_groups[0]["lr"] = lrnow

        for step in range(0, NUM_STEPS):
            global_step += NUM_ENVS
            obs[step] = next_obs
            dones[step] = next_done

            # ALGO LOGIC: action logic
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            # TRY NOT TO MODIFY: execute the game and log data.
            next_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
            next_done = np.logical_or(terminations, truncations)
            rewards[step] = torch.tensor(reward).to(device).view(-1)
            next_obs, next_done = torch.Tensor(next_obs).to(device), torch.Tensor(next_done).to(device)

        # bootstrap value if not done
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards).to(device)
            lastgaelam = 0
            for t in reversed(range(NUM_STEPS)):
                if t == NUM_STEPS - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + GAMMA * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + GAMMA * GAE_LAMBDA * nextnonterminal * lastgaelam
            returns = advantages + values

        # flatten the batch
        b_obs = obs.reshape((-1,) + obs_shape)
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        # Optimizing the policy and value network
        b_inds = np.arange(BATCH_SIZE)
        for _epoch in range(UPDATE_EPOCHS):
            np.random.shuffle(b_inds)
            for start in range(0, BATCH_SIZE, MINIBATCH_SIZE):
                end = start + MINIBATCH_SIZE
                mb_inds = b_inds[start:end]

                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions.long()[mb_inds]
                )
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                mb_advantages = b_advantages[mb_inds]
                if NORM_ADV:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

                # Policy loss
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - CLIP_COEF, 1 + CLIP_COEF)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                # Value loss
                newvalue = newvalue.view(-1)
                if CLIP_VLOSS:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds],
                        -CLIP_COEF,
                        CLIP_COEF,
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss_max = torch.max(v_loss_unclipped, v_loss_clipped)
                    v_loss = 0.5 * v_loss_max.mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - ENT_COEF * entropy_loss + v_loss * VF_COEF

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), MAX_GRAD_NORM)
                optimizer.step()

    envs.close()
    return agent, time.perf_counter() - start_time


@torch.no_grad()
def evaluate_reference(agent: nn.Module, episodes: int, seed: int) -> float:
    """Mean undiscounted return of ``episodes`` episodes, sampling actions from the policy.

    Scored like ``evosearch.train.score.score_weights`` so the two columns compare: one env per
    episode, each contributing its first completed episode. EnvPool returns the final
    observation on the done step and resets on the next call, so a finished env is simply
    ignored from then on. Sampling uses a forked RNG so evaluation leaves global state alone.
    """
    envs = make_envs(episodes, seed)
    obs, _ = envs.reset()
    running = np.zeros(episodes)
    final = np.zeros(episodes)
    finished = np.zeros(episodes, dtype=bool)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        while not finished.all():
            action, _, _, _ = agent.get_action_and_value(torch.Tensor(obs))
            obs, reward, terminations, truncations, _ = envs.step(action.numpy())
            running += np.where(finished, 0.0, reward)
            ended = np.logical_or(terminations, truncations) & ~finished
            final[ended] = running[ended]
            finished |= ended
    envs.close()
    return float(final.mean())


if __name__ == "__main__":
    torch.set_num_threads(1)
    trained, seconds = train_reference(100_000, seed=1)
    print(f"trained in {seconds:.1f}s; mean return {evaluate_reference(trained, 32, seed=0):.1f}")
