"""The torch Freeway against minatar's own ``freeway.py``: step-by-step equality, then distributions.

The step-by-step test copies a reference env's internal state into the batch before every step, so
each step is compared on its own. Freeway draws random numbers inside a step in one place: when the
chicken reaches the top, every car gets a new speed and direction (``_randomize_cars``). The port
draws its own, so on those steps only the deterministic part is compared exactly (chicken, timers,
car positions, which cannot move on that step) and the new speeds only for being valid; the next
step starts again from the reference's state, its draws included. The distribution of the draws is
checked by comparing episode returns instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from minatar import Environment

from evosearch.envs.native.base import NativeStep
from evosearch.envs.native.minatar.base import GameState
from evosearch.envs.native.minatar.freeway import Freeway

GAME = "freeway"
Policy = Callable[[int, np.random.Generator], np.ndarray]  # (n, rng) -> n positions in action_set (blind policies)
Z_99 = 2.576  # two-sided 99% normal quantile
UP = 1  # position of 'u' in the action set (n, u, d)
SHORT_GAME = 400  # terminate_timer for the distribution test's shortened episodes


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: the batches are tiny and the test machine is shared, where a second thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class NoStickyFreeway(Freeway):
    """The port with sticky actions off, as ``Environment(sticky_action_prob=0.0)`` for the lockstep test."""

    sticky_action_prob = 0.0


class ShortFreeway(Freeway):
    """Episodes of ``SHORT_GAME + 1`` steps instead of 2,501: only the start value of the game's own timer
    differs, so the distribution test sees many more (independent) episodes for the same work."""

    def initial_state(self, n: int) -> GameState:
        state = super().initial_state(n)
        state["terminate_timer"] = torch.full_like(state["terminate_timer"], SHORT_GAME)
        return state


def reference_state(game: object) -> dict[str, np.ndarray]:
    """A ``minatar`` Freeway ``Env``'s attributes as the port's state dict (one env)."""
    cars = np.array(game.cars)  # rows [x, y, timer, speed]; y is always the car's index + 1
    assert (cars[:, 1] == np.arange(1, 9)).all()
    return {
        "pos": np.asarray(game.pos),
        "move_timer": np.asarray(game.move_timer),
        "terminate_timer": np.asarray(game.terminate_timer),
        "car_x": cars[:, 0],
        "car_timer": cars[:, 2],
        "car_speed": cars[:, 3],
    }


def stacked(states: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.stack([state[key] for state in states]) for key in states[0]}


def image(env: Environment) -> np.ndarray:
    """The reference's ``[10, 10, C]`` bool state as the port's flat channels-first float32 observation."""
    return env.state().transpose(2, 0, 1).reshape(-1).astype(np.float32)


def assert_step_matches(out: NativeStep, state: GameState, refs: list[Environment], rewards: np.ndarray,
                        terminals: np.ndarray) -> None:
    """One batched step against the reference envs after their own step.

    Where the chicken crossed (reward 1) the cars' speeds are fresh draws on both sides: those envs
    compare the chicken and car channels and every state field but the speeds and car timers, and
    check the port's new speeds are valid (|speed| 1-5, and no car moved: its timer is |speed| - 1).
    """
    np.testing.assert_array_equal(out.reward.numpy(), rewards)
    np.testing.assert_array_equal(out.terminated.numpy(), terminals.astype(bool))
    assert not out.truncated.any()
    won = rewards == 1
    final_obs = out.final_obs.numpy().reshape(len(refs), 7, 100)
    expected_obs = np.stack([image(ref) for ref in refs]).reshape(len(refs), 7, 100)
    np.testing.assert_array_equal(final_obs[~won], expected_obs[~won])
    np.testing.assert_array_equal(final_obs[won, :2], expected_obs[won, :2])
    going = ~terminals.astype(bool)
    np.testing.assert_array_equal(out.obs.numpy()[going], out.final_obs.numpy()[going])
    expected = stacked([reference_state(ref.env) for ref in refs])
    for key, value in expected.items():
        exact = going & ~won if key in ("car_timer", "car_speed") else going
        np.testing.assert_array_equal(state[key].numpy()[exact], value[exact], err_msg=key)
    speeds = state["car_speed"].numpy()[going & won]
    assert np.isin(np.abs(speeds), np.arange(1, 6)).all()
    np.testing.assert_array_equal(state["car_timer"].numpy()[going & won], np.abs(speeds) - 1)


def test_steps_match_minatar_exactly() -> None:
    """Lockstep over many episodes: observation, reward, termination and the next state agree.

    The chicken mostly goes up, so it crosses often and meets cars often. After every reset the
    reference's timer is set to a random short length: the step that ends a game comes many times,
    and at different phases of the chicken's and the cars' timers.
    """
    num_envs, steps = 8, 600
    refs = [Environment(GAME, sticky_action_prob=0.0) for _ in range(num_envs)]
    rng = np.random.default_rng(0)
    for seed, ref in enumerate(refs):
        ref.seed(seed)
        ref.reset()
        ref.env.terminate_timer = int(rng.integers(20, 300))
    native = NoStickyFreeway(num_envs, seed=0)
    action_set = Freeway.action_set
    episodes = wins = hits = 0
    for _ in range(steps):
        native.set_state(stacked([reference_state(ref.env) for ref in refs]), elapsed=0)
        actions = np.where(rng.random(num_envs) < 0.85, UP, rng.integers(0, 3, num_envs))
        before = [ref.env.pos for ref in refs]
        out = native.step(torch.as_tensor(actions))
        rewards, terminals = np.array([ref.act(action_set[a]) for ref, a in zip(refs, actions, strict=True)]).T
        assert_step_matches(out, native.state, refs, rewards, terminals)
        wins += rewards.sum()
        # Sent back to the bottom without crossing: a car hit the chicken.
        hits += sum(ref.env.pos == 9 and pos < 9 and not won
                    for ref, pos, won in zip(refs, before, rewards, strict=True))
        for ref, terminal in zip(refs, terminals, strict=True):
            if terminal:
                episodes += 1
                ref.reset()
                ref.env.terminate_timer = int(rng.integers(20, 300))
    assert episodes >= 20 and wins >= 40 and hits >= 100, (episodes, wins, hits)


def test_game_lasts_2501_steps_and_ends_by_termination() -> None:
    """Freeway's own timer ends it (terminated, never truncated), on the same step as minatar's."""
    ref = Environment(GAME)
    ref.seed(0)
    ref.reset()
    ref_length = 1
    while not ref.act(0)[1]:
        ref_length += 1
    env = Freeway(1, seed=0)
    noop = torch.zeros(1, dtype=torch.int64)
    for _ in range(ref_length - 1):
        out = env.step(noop)
        assert not out.terminated.any() and not out.truncated.any()
    out = env.step(noop)
    assert out.terminated.all() and not out.truncated.any()
    assert ref_length == 2501 and Freeway.max_episode_steps > ref_length
    assert (env.elapsed == 0).all()
    assert (env.state["terminate_timer"] == 2500).all()


def reference_returns(policy: Policy, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``episodes`` shortened reference games (see ``ShortFreeway``), sticky actions at 0.1."""
    env = Environment(GAME)  # sticky_action_prob=0.1, the default
    env.seed(seed)
    rng = np.random.default_rng(seed)
    action_set = env.minimal_action_set()
    returns = np.zeros(episodes)
    for episode in range(episodes):
        env.reset()
        env.env.terminate_timer = SHORT_GAME
        terminal = False
        while not terminal:
            action = policy(1, rng)[0]
            reward, terminal = env.act(action_set[action])
            returns[episode] += reward
    return returns


def native_returns(policy: Policy, num_envs: int, per_env: int, seed: int) -> np.ndarray:
    """Returns of the first ``per_env`` shortened games of every env (all the same length)."""
    env = ShortFreeway(num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    returns = np.zeros((per_env, num_envs))
    for episode in range(per_env):
        for step in range(SHORT_GAME + 1):
            out = env.step(torch.as_tensor(policy(num_envs, rng)))
            returns[episode] += out.reward.numpy()
            assert out.terminated.all() == (step == SHORT_GAME) and out.terminated.any() == out.terminated.all()
    return returns.reshape(-1)


def uniform(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(len(Freeway.action_set), size=n)


def always_up(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.full(n, UP)


@pytest.mark.parametrize("policy", [uniform, always_up], ids=["uniform", "always-up"])
def test_returns_match_minatar(policy: Policy) -> None:
    """Mean return (Welch-style, 99%) with sticky actions at 0.1; the lengths are fixed by the timer.

    Always going up makes the return hinge on the cars' speeds and directions: a bad draw can keep
    the chicken bouncing off one lane until the game ends, a good one lets it cross every few steps.
    """
    native = native_returns(policy, num_envs=64, per_env=2, seed=1)
    reference = reference_returns(policy, episodes=150, seed=1)
    diff = native.mean() - reference.mean()
    se = np.sqrt(native.var(ddof=1) / native.size + reference.var(ddof=1) / reference.size)
    assert abs(diff) <= Z_99 * se, f"native {native.mean():.3f} vs minatar {reference.mean():.3f} (se {se:.3f})"


def test_spaces_and_metadata() -> None:
    env = Freeway(3, seed=0)
    ref = Environment(GAME)
    assert env.env_id == "MinAtar/Freeway-v1"
    assert env.action_set == tuple(ref.minimal_action_set())
    assert env.act_dim == 3 and env.discrete
    assert env.obs_shape == (7, 10, 10) and env.obs_dim == 700
    obs = env.reset()
    assert obs.shape == (3, 700) and obs.dtype == torch.float32
    out = env.step(torch.zeros(3, dtype=torch.int64))
    assert out.reward.dtype == torch.float32 and out.terminated.dtype == torch.bool
    assert out.obs.shape == out.final_obs.shape == (3, 700)


def test_reset_state_matches_minatar() -> None:
    """Fresh games: chicken at the bottom, cars at x = 0 with speeds uniform over +-1..5, as the reference draws."""
    env = Freeway(512, seed=0)
    images = env.reset().reshape(512, 7, 10, 10)
    assert (images[:, 0, 9, 4] == 1).all() and images[:, 0].sum() == 512
    assert (images[:, 1, 1:9, 0] == 1).all() and images[:, 1].sum() == 512 * 8
    speeds = env.state["car_speed"].flatten().numpy()
    counts = np.array([(speeds == s).sum() for s in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)])
    assert counts.sum() == speeds.size and (np.abs(counts - speeds.size / 10) < 4 * np.sqrt(speeds.size / 10)).all()
    ref = Environment(GAME)
    ref.seed(0)
    ref.reset()
    native = Freeway(1, seed=0)
    native.set_state(reference_state(ref.env))
    np.testing.assert_array_equal(native.observe(native.state)[0].numpy(), image(ref))


def test_episodes_autoreset_and_seed_determinism() -> None:
    def rollout(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        env = Freeway(8, seed=seed)
        env.set_state({"terminate_timer": torch.tensor(30)})  # every game ends on step 31
        actions = torch.Generator().manual_seed(7)
        obs, rewards = [env.observe(env.state)], []
        for step in range(1, 41):
            out = env.step(torch.randint(0, 3, (8,), generator=actions))
            obs.append(out.obs)
            rewards.append(out.reward)
            assert out.terminated.all() == (step == 31) and out.terminated.any() == out.terminated.all()
            if step == 31:  # a fresh game in the same step: chicken at the bottom, cars at x = 0, full timer
                fresh = out.obs.reshape(8, 7, 10, 10)
                assert (fresh[:, 1, 1:9, 0] == 1).all() and (fresh[:, 0, 9, 4] == 1).all()
                assert not torch.equal(out.obs, out.final_obs) and (env.elapsed == 0).all()
                assert (env.state["terminate_timer"] == 2500).all()
        return torch.stack(obs), torch.stack(rewards)

    first, again, other = rollout(3), rollout(3), rollout(4)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


def test_crossing_redraws_car_speeds_uniformly() -> None:
    """A crossing gives every car a fresh speed in +-1..5, uniform and independent of its old one.

    Returns barely depend on these draws (see ``test_returns_match_minatar``), so they are checked
    directly: the chicken is put one row below the top, ready to move, with every car at speed 1.
    """
    n = 1000
    env = NoStickyFreeway(n, seed=0)
    env.set_state({"pos": torch.tensor(1), "move_timer": torch.tensor(0), "car_speed": torch.tensor(1),
                   "car_timer": torch.tensor(3), "car_x": torch.tensor(7)})
    out = env.step(torch.full((n,), UP))
    assert (out.reward == 1).all()
    speeds = env.state["car_speed"].flatten().numpy()
    expected = speeds.size / 10
    counts = np.array([(speeds == s).sum() for s in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)])
    assert counts.sum() == speeds.size and (np.abs(counts - expected) < 4 * np.sqrt(expected)).all(), counts
    np.testing.assert_array_equal(env.state["car_timer"].flatten().numpy(), np.abs(speeds) - 1)
    assert (env.state["car_x"] == 7).all() and (env.state["pos"] == 9).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_like_on_cpu() -> None:
    """CUDA draws other random numbers than CPU, so compare the dynamics from the same states."""
    env = NoStickyFreeway(32, seed=0, device="cuda")
    cpu = NoStickyFreeway(32, seed=0)
    actions = torch.Generator().manual_seed(0)
    for _ in range(200):
        cpu.set_state({key: value.cpu() for key, value in env.state.items()})
        chosen = torch.randint(0, 3, (32,), generator=actions)
        out = env.step(chosen.cuda())
        expected = cpu.step(chosen)
        assert out.obs.device.type == "cuda"
        # A crossing draws new car speeds, which differ between the devices: compare the chicken and cars.
        assert torch.equal(out.final_obs.cpu()[:, :200], expected.final_obs[:, :200])
        assert torch.equal(out.reward.cpu(), expected.reward)
        assert torch.equal(out.terminated.cpu(), expected.terminated)
