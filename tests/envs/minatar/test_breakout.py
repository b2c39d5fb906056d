"""The torch Breakout against minatar's own ``breakout.py``: step-by-step equality, then distributions.

The step-by-step test copies a reference env's internal state into the batch before every step, so
each step is compared on its own and an early divergence cannot hide a later one. Breakout draws
random numbers only at a reset (the ball's start corner), so every step is deterministic given the
state and the executed action; the reset distribution and sticky actions are checked by comparing
episode statistics instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from minatar import Environment

from evosearch.envs.native.base import NativeStep
from evosearch.envs.native.minatar.base import GameState
from evosearch.envs.native.minatar.breakout import Breakout

GAME = "breakout"
Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]  # [n, C, 10, 10] images -> positions in action_set
Z_99 = 2.576  # two-sided 99% normal quantile


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: the batches are tiny and the test machine is shared, where a second thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class NoStickyBreakout(Breakout):
    """The port with sticky actions off, as ``Environment(sticky_action_prob=0.0)`` for the lockstep test."""

    sticky_action_prob = 0.0


def reference_state(game: object) -> dict[str, np.ndarray]:
    """A ``minatar`` Breakout ``Env``'s attributes as the port's state dict (one env)."""
    return {
        "ball_x": np.asarray(game.ball_x),
        "ball_y": np.asarray(game.ball_y),
        "ball_dir": np.asarray(game.ball_dir),
        "pos": np.asarray(game.pos),
        "brick_map": game.brick_map.astype(bool),
        "strike": np.asarray(game.strike),
        "last_x": np.asarray(game.last_x),
        "last_y": np.asarray(game.last_y),
    }


def stacked(states: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.stack([state[key] for state in states]) for key in states[0]}


def image(env: Environment) -> np.ndarray:
    """The reference's ``[10, 10, C]`` bool state as the port's flat channels-first float32 observation."""
    return image_of(env.env)


def image_of(game: object) -> np.ndarray:
    return game.state().transpose(2, 0, 1).reshape(-1).astype(np.float32)


def assert_step_matches(out: NativeStep, state: GameState, games: list[object], rewards: np.ndarray,
                        terminals: np.ndarray) -> None:
    """One batched step against the reference games after their own step: reward, termination, the
    observation the step produced and, where the episode goes on, the port's whole next state."""
    np.testing.assert_array_equal(out.reward.numpy(), rewards)
    np.testing.assert_array_equal(out.terminated.numpy(), terminals.astype(bool))
    np.testing.assert_array_equal(out.final_obs.numpy(), np.stack([image_of(game) for game in games]))
    going = ~terminals.astype(bool)
    np.testing.assert_array_equal(out.obs.numpy()[going], out.final_obs.numpy()[going])
    expected = stacked([reference_state(game) for game in games])
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key].numpy()[going], value[going], err_msg=key)


def follow_ball(images: np.ndarray) -> np.ndarray:
    """Scripted policy: move the paddle towards the ball's column (positions in ``action_set``: n, l, r)."""
    ball = images[:, 1].max(axis=1).argmax(axis=1)
    paddle = images[:, 0, 9].argmax(axis=1)
    return np.where(ball < paddle, 1, np.where(ball > paddle, 2, 0))


def uniform(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(len(Breakout.action_set), size=images.shape[0])


def tracking(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return follow_ball(images)


def test_steps_match_minatar_exactly() -> None:
    """Lockstep over many episodes: observation, reward, termination and the whole next state agree.

    Half the envs act uniformly at random (short episodes, many resets); the other half follow the
    ball, which without sticky actions never misses, so they clear the wall and see it refill.
    """
    num_envs, steps = 8, 600
    refs = [Environment(GAME, sticky_action_prob=0.0) for _ in range(num_envs)]
    for seed, ref in enumerate(refs):
        ref.seed(seed)
        ref.reset()
    native = NoStickyBreakout(num_envs, seed=0)
    rng = np.random.default_rng(0)
    action_set = Breakout.action_set
    followers = np.arange(num_envs) >= num_envs // 2
    episodes = bricks = refills = 0
    for _ in range(steps):
        native.set_state(stacked([reference_state(ref.env) for ref in refs]), elapsed=0)
        images = np.stack([image(ref) for ref in refs]).reshape(num_envs, 4, 10, 10)
        actions = np.where(followers, follow_ball(images), uniform(images, rng))
        out = native.step(torch.as_tensor(actions))
        had_bricks = [ref.env.brick_map.any() for ref in refs]
        rewards, terminals = np.array([ref.act(action_set[a]) for ref, a in zip(refs, actions, strict=True)]).T
        assert_step_matches(out, native.state, [ref.env for ref in refs], rewards, terminals)
        bricks += rewards.sum()
        refills += sum(not had and ref.env.brick_map.any() for had, ref in zip(had_bricks, refs, strict=True))
        for ref, terminal in zip(refs, terminals, strict=True):
            if terminal:
                episodes += 1
                ref.reset()
    assert not out.truncated.any()
    assert episodes >= 50 and bricks >= 200 and refills >= 2, (episodes, bricks, refills)


def test_random_states_step_like_minatar() -> None:
    """Every action from random game states, which reach the rare branches play seldom does.

    The states are random walls (any cell of rows 1-3 may be missing, as mid-game) with the ball
    anywhere above the bottom row, in any direction, with ``strike`` set or not: this covers a ball
    passing into a brick while ``strike`` is set, a side wall and a brick bounce in one step, the
    paddle's face and corner bounces and refills of an empty wall; counters make sure the rarer
    ones happened.
    """
    count = 1000
    rng = np.random.default_rng(0)
    states = {
        "ball_x": rng.integers(0, 10, count),
        # Half the balls just above the paddle, half up among the bricks, where the branches are.
        "ball_y": np.where(rng.random(count) < 0.5, rng.integers(7, 9, count), rng.integers(0, 5, count)),
        "ball_dir": rng.integers(0, 4, count),
        "pos": rng.integers(0, 10, count),
        "brick_map": np.zeros((count, 10, 10), dtype=bool),
        "strike": rng.random(count) < 0.5,
        "last_x": rng.integers(0, 10, count),
        "last_y": rng.integers(0, 10, count),
    }
    # Walls from full to empty, so some balls reach the bottom with no bricks left.
    density = np.where(rng.random((count, 1, 1)) < 0.1, 0.0, rng.random((count, 1, 1)))
    states["brick_map"][:, 1:4] = rng.random((count, 3, 10)) < density
    native = NoStickyBreakout(count, seed=0)
    seen = {"pass-through": 0, "brick": 0, "refill": 0, "face": 0, "corner": 0, "terminal": 0}
    for position, action in enumerate(Breakout.action_set):
        native.set_state(states, elapsed=0)
        out = native.step(torch.full((count,), position))
        games, rewards, terminals = [], np.zeros(count), np.zeros(count, dtype=bool)
        for i in range(count):
            ref = Environment(GAME, sticky_action_prob=0.0).env
            for key, value in states.items():
                setattr(ref, key, value[i].astype(np.float64) if key == "brick_map" else value[i].item())
            had_bricks, strike, dir_before = ref.brick_map.any(), ref.strike, ref.ball_dir
            reward, terminal = ref.act(action)
            games.append(ref)
            rewards[i], terminals[i] = reward, terminal
            seen["brick"] += reward
            seen["pass-through"] += strike and ref.strike and reward == 0
            seen["refill"] += not had_bricks and ref.brick_map.any()
            seen["terminal"] += terminal
            reached_bottom = ref.ball_y == states["ball_y"][i] and states["ball_y"][i] == 8 and not terminal
            seen["face"] += reached_bottom and states["ball_x"][i] == ref.pos
            seen["corner"] += reached_bottom and states["ball_x"][i] != ref.pos and dir_before in (2, 3)
        assert_step_matches(out, native.state, games, rewards, terminals)
    assert min(seen.values()) >= 10, seen


def reference_episodes(policy: Policy, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of ``episodes`` reference episodes, cut at the port's 1,000-step time limit."""
    env = Environment(GAME)  # sticky_action_prob=0.1, the default
    env.seed(seed)
    rng = np.random.default_rng(seed)
    action_set = env.minimal_action_set()
    returns, lengths = np.zeros(episodes), np.zeros(episodes)
    for episode in range(episodes):
        env.reset()
        terminal = False
        while not terminal and lengths[episode] < Breakout.max_episode_steps:
            action = policy(env.state().transpose(2, 0, 1)[None], rng)[0]
            reward, terminal = env.act(action_set[action])
            returns[episode] += reward
            lengths[episode] += 1
    return returns, lengths


def native_episodes(policy: Policy, num_envs: int, per_env: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the first ``per_env`` episodes of every env (the first ones: an unbiased sample)."""
    env = Breakout(num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    obs = env.reset()
    running, elapsed = np.zeros(num_envs), np.zeros(num_envs)
    finished = np.zeros(num_envs, dtype=np.int64)
    returns: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    while (finished < per_env).any():
        actions = policy(obs.numpy().reshape(num_envs, *Breakout.obs_shape), rng)
        out = env.step(torch.as_tensor(actions))
        running += out.reward.numpy()
        elapsed += 1
        done = (out.terminated | out.truncated).numpy()
        keep = done & (finished < per_env)
        returns.append(running[keep])
        lengths.append(elapsed[keep])
        finished += done
        running[done] = 0
        elapsed[done] = 0
        obs = out.obs
    return np.concatenate(returns), np.concatenate(lengths)


def assert_same_mean(native: np.ndarray, reference: np.ndarray, what: str) -> None:
    """Welch-style check: the difference of the means lies within its 99% confidence interval of 0."""
    diff = native.mean() - reference.mean()
    se = np.sqrt(native.var(ddof=1) / native.size + reference.var(ddof=1) / reference.size)
    assert abs(diff) <= Z_99 * se, f"{what}: native {native.mean():.3f} vs minatar {reference.mean():.3f} (se {se:.3f})"


@pytest.mark.parametrize("policy", [uniform, tracking], ids=["uniform", "follow-ball"])
def test_episode_statistics_match_minatar(policy: Policy) -> None:
    """Mean return and length with sticky actions at 0.1: the start corner and sticky actions are random.

    Following the ball is the policy sticky actions hurt (a repeated move lets the ball past), so
    this fails if sticky actions are off; a uniformly random policy mostly exercises the resets.
    """
    native_returns, native_lengths = native_episodes(policy, num_envs=64, per_env=5, seed=1)
    ref_returns, ref_lengths = reference_episodes(policy, episodes=300, seed=1)
    assert_same_mean(native_returns, ref_returns, "return")
    assert_same_mean(native_lengths, ref_lengths, "episode length")


def test_spaces_and_metadata() -> None:
    env = Breakout(3, seed=0)
    ref = Environment(GAME)
    assert env.env_id == "MinAtar/Breakout-v1"
    assert env.action_set == tuple(ref.minimal_action_set())
    assert env.act_dim == 3 and env.discrete
    assert env.obs_shape == (4, 10, 10) and env.obs_dim == 400
    obs = env.reset()
    assert obs.shape == (3, 400) and obs.dtype == torch.float32
    out = env.step(torch.zeros(3, dtype=torch.int64))
    assert out.reward.dtype == torch.float32 and out.terminated.dtype == torch.bool
    assert out.obs.shape == out.final_obs.shape == (3, 400)


def test_reset_state_matches_minatar() -> None:
    """Every fresh state is one of the reference's two: ball in row 3 at a side wall heading inwards."""
    env = Breakout(256, seed=0)
    images = env.reset().reshape(256, 4, 10, 10)
    ref = Environment(GAME)
    starts = set()
    for seed in range(40):
        ref.seed(seed)
        ref.reset()
        starts.add(image(ref).tobytes())
    assert len(starts) == 2
    assert {row.numpy().tobytes() for row in images.reshape(256, -1)} == starts
    left = (images[:, 1, 3, 0] == 1).float().mean().item()
    assert 0.4 < left < 0.6


def test_episodes_autoreset_and_seed_determinism() -> None:
    def rollout(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        env = Breakout(16, seed=seed)
        actions = torch.Generator().manual_seed(7)
        obs, rewards, ended = [env.reset()], [], []
        for _ in range(60):
            out = env.step(torch.randint(0, 3, (16,), generator=actions))
            obs.append(out.obs)
            rewards.append(out.reward)
            ended.append(out.terminated)
            # A finished env starts over in the same step: its obs is a fresh start, final_obs is not.
            fresh = out.obs.reshape(16, 4, 10, 10)
            assert (fresh[out.terminated, 1, 3].sum(1) == 1).all()
            assert (fresh[out.terminated, 3, 1:4] == 1).all()
            assert (out.final_obs.reshape(16, 4, 10, 10)[out.terminated, 1, 9].sum(1) == 1).all()
            assert (env.elapsed[out.terminated] == 0).all()
        return torch.stack(obs), torch.stack(rewards), torch.stack(ended)

    first, again, other = rollout(3), rollout(3), rollout(4)
    assert first[2].sum() > 5  # several episodes ended and restarted within the rollout
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_like_on_cpu() -> None:
    """The same seed gives the same game on CUDA as on CPU only up to the generator, so compare dynamics."""
    env = NoStickyBreakout(32, seed=0, device="cuda")
    cpu = NoStickyBreakout(32, seed=0)
    actions = torch.Generator().manual_seed(0)
    for _ in range(100):
        cpu.set_state({key: value.cpu() for key, value in env.state.items()})
        chosen = torch.randint(0, 3, (32,), generator=actions)
        out = env.step(chosen.cuda())
        expected = cpu.step(chosen)
        assert out.obs.device.type == "cuda"
        assert torch.equal(out.final_obs.cpu(), expected.final_obs)
        assert torch.equal(out.reward.cpu(), expected.reward)
        assert torch.equal(out.terminated.cpu(), expected.terminated)
