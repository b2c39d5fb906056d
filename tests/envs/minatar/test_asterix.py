"""The torch Asterix against ``minatar``'s own ``asterix.Env``, step by step and in distribution.

The step-by-step test is exact, spawns included: before each step the reference's internal state is
copied into the native env, the reference's random draws for that step are predicted from a copy of
its ``RandomState`` and handed to the native env in place of its own (``_spawn_draws``), and the two
step with the same action. The native env's own draws are checked separately, in distribution.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

minatar = pytest.importorskip("minatar")

import minatar_reference as shared  # noqa: E402
from minatar_reference import assert_same_mean, reference_obs  # noqa: E402

from evosearch.envs.native.minatar.asterix import Asterix  # noqa: E402

ACTIONS = Asterix.action_set


def reference(seed: int, sticky_action_prob: float) -> minatar.Environment:
    return shared.reference("asterix", seed, sticky_action_prob)


def native_state(game) -> dict[str, np.ndarray | int]:
    """The reference game's attributes as the native state dict (a free slot's fields as zeros)."""
    slots = game.entities
    return {
        "player_x": game.player_x,
        "player_y": game.player_y,
        "alive": np.array([e is not None for e in slots]),
        "entity_x": np.array([e[0] if e is not None else 0 for e in slots]),
        "right": np.array([bool(e[2]) if e is not None else False for e in slots]),
        "gold": np.array([bool(e[3]) if e is not None else False for e in slots]),
        "spawn_speed": game.spawn_speed,
        "spawn_timer": game.spawn_timer,
        "move_speed": game.move_speed,
        "move_timer": game.move_timer,
        "ramp_timer": game.ramp_timer,
        "ramp_index": game.ramp_index,
    }


def comparable(state: dict, env: int = 0) -> dict[str, np.ndarray]:
    """One env's state as numpy, with a free slot's (meaningless) fields zeroed."""
    values = {
        key: np.asarray(value.cpu()[env] if torch.is_tensor(value) else value) for key, value in state.items()
    }
    for key in ("entity_x", "right", "gold"):
        values[key] = np.where(values["alive"], values[key], 0)
    return values




def predicted_draws(env: minatar.Environment) -> tuple[bool, bool, int]:
    """What the reference's next ``act`` will draw for a spawn, from a copy of its generator.

    ``Environment.act`` draws the sticky-action uniform first (even at probability 0), then, when the
    spawn timer is 0, ``_spawn_entity`` draws ``rand() < 1/2``, ``rand() < 1/3`` and, if some slot is
    free, ``randint(len(free))``. Without a spawn the values do not matter (the native env ignores them,
    as it ignores its own), so they are not predicted.
    """
    if env.env.spawn_timer != 0:
        return False, False, 0
    rng = np.random.RandomState()
    rng.set_state(env.random.get_state())
    rng.rand()
    right = rng.rand() < 1 / 2
    gold = rng.rand() < 1 / 3
    free = sum(e is None for e in env.env.entities)
    return right, gold, rng.randint(free) if free else 0


def randomise_difficulty(game, rng: np.random.Generator) -> None:
    """Start an episode anywhere on the difficulty ramp, so short random-policy episodes still ramp."""
    game.spawn_speed = int(rng.integers(1, 11))
    game.spawn_timer = int(rng.integers(0, game.spawn_speed + 1))
    game.move_speed = int(rng.integers(1, 6))
    game.move_timer = int(rng.integers(0, game.move_speed + 1))
    game.ramp_timer = int(rng.integers(-1, 30))
    game.ramp_index = int(rng.integers(0, 12))


def stacked(states: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.stack([np.asarray(state[key]) for state in states]) for key in states[0]}


def test_matches_reference_step_by_step() -> None:
    """Eight reference games side by side in one native batch, re-synced before every step.

    Three of every four episodes start at a random point of the difficulty ramp (speeds, timers), so
    the random policy's short episodes still cover ramping and the fastest speeds.
    """
    batch, steps = 8, 400
    refs = [reference(seed=3 + i, sticky_action_prob=0.0) for i in range(batch)]
    env = Asterix(batch, seed=0)
    env._sticky_prob = torch.tensor(0.0)
    rng = np.random.default_rng(4)
    counts = dict.fromkeys(("episodes", "spawns", "full", "moves", "gold", "ramps", "fast"), 0)
    for _ in range(steps):
        before = [native_state(ref.env) for ref in refs]
        env.set_state(stacked(before), elapsed=0)
        draws = [torch.tensor(column) for column in zip(*(predicted_draws(ref) for ref in refs), strict=True)]
        env._spawn_draws = lambda n, draws=draws: draws  # type: ignore[method-assign]
        actions = rng.integers(len(ACTIONS), size=batch)

        results = [ref.act(ACTIONS[action]) for ref, action in zip(refs, actions, strict=True)]
        step = env.step(torch.as_tensor(actions))

        expected_obs = np.stack([reference_obs(ref) for ref in refs])
        if not np.array_equal(step.final_obs.numpy(), expected_obs):
            np.testing.assert_array_equal(step.final_obs.numpy(), expected_obs)
        assert step.reward.dtype == torch.float32 and step.terminated.dtype == torch.bool
        assert step.reward.tolist() == [float(reward) for reward, _ in results]
        assert step.terminated.tolist() == [terminal for _, terminal in results]
        assert not step.truncated.any()
        for i, (ref, (reward, terminal)) in enumerate(zip(refs, results, strict=True)):
            if not terminal:  # the native env reset itself where the episode ended; else all fields agree
                expected, got = comparable(native_state(ref.env)), comparable(env.state, i)
                for key in expected:
                    np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
            counts["spawns"] += before[i]["spawn_timer"] == 0
            counts["full"] += before[i]["spawn_timer"] == 0 and before[i]["alive"].all()
            counts["moves"] += before[i]["move_timer"] == 0 and before[i]["alive"].any()
            counts["gold"] += reward
            counts["ramps"] += ref.env.ramp_index != before[i]["ramp_index"]
            counts["fast"] += ref.env.spawn_speed == 1 and ref.env.move_speed == 1
            if terminal:
                counts["episodes"] += 1
                ref.reset()
                if counts["episodes"] % 4:  # every fourth episode starts as the game does
                    randomise_difficulty(ref.env, rng)
    # the comparison covered every part of the game, ramping included
    assert counts["episodes"] >= 40, counts
    assert counts["spawns"] >= 400 and counts["full"] >= 20 and counts["moves"] >= 400, counts
    assert counts["gold"] >= 20 and counts["ramps"] >= 20 and counts["fast"] >= 20, counts


def test_initial_state_and_autoreset_match_reference() -> None:
    ref = reference(seed=0, sticky_action_prob=0.0)
    env = Asterix(3, seed=0)
    expected = comparable(native_state(ref.env))
    for key, value in comparable(env.state).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
    np.testing.assert_array_equal(env.reset()[0].numpy(), reference_obs(ref))

    # an enemy one cell left of the player, moving right this step: the episode ends and restarts
    alive = np.zeros(8, dtype=bool)
    alive[4] = True
    entity_x = np.zeros(8, dtype=np.int64)
    entity_x[4] = 4
    env.set_state({"alive": alive, "entity_x": entity_x, "right": alive, "move_timer": 0, "spawn_timer": 3})
    step = env.step(torch.zeros(3, dtype=torch.int64))
    assert step.terminated.all() and not step.truncated.any()
    assert step.final_obs.view(3, 4, 10, 10)[:, 1, 5, 5].all()  # the enemy on the player's cell
    np.testing.assert_array_equal(step.obs.numpy(), np.broadcast_to(reference_obs(ref), (3, 400)))
    assert (env.elapsed == 0).all()


def test_spawn_draws_are_uniform_over_free_slots() -> None:
    """One spawning step over a big batch: side 1/2, gold 1/3, slot uniform over the free ones."""
    n = 24_000
    env = Asterix(n, seed=5)
    env._sticky_prob = torch.tensor(0.0)
    alive = np.array([1, 0, 0, 1, 1, 0, 1, 1], dtype=bool)  # free: slots 1, 2, 5
    env.set_state({"alive": alive, "entity_x": np.full(8, 2), "spawn_timer": 0, "move_timer": 3})
    env.step(torch.zeros(n, dtype=torch.int64))
    new = env.state["alive"] & ~torch.as_tensor(alive)
    assert (new.sum(1) == 1).all()
    slots = new.float().mean(0)
    assert torch.allclose(slots[[1, 2, 5]], torch.full((3,), 1 / 3), atol=0.015) and slots[alive].sum() == 0
    right = (env.state["right"] & new).any(1)
    assert abs(right.float().mean().item() - 1 / 2) < 0.015
    assert abs((env.state["gold"] & new).any(1).float().mean().item() - 1 / 3) < 0.015
    x = (env.state["entity_x"] * new).sum(1)
    assert torch.equal(x, torch.where(right, 0, 9))
    assert (env.state["spawn_timer"] == 9).all()


# ----------------------------------------------------------------- distribution with sticky actions


def gold_seeker(obs: np.ndarray) -> np.ndarray:
    """A scripted policy on flat observations ``[n, 400]``: walk to the row of the highest gold.

    Returns positions in the minimal action set (n l u r d): up or down toward the gold's row, no-op
    when on it or when there is no gold.
    """
    image = obs.reshape(-1, 4, 10, 10)
    player_row = image[:, 0].any(2).argmax(1)
    gold_rows = image[:, 3].any(2)
    target = np.where(gold_rows.any(1), gold_rows.argmax(1), player_row)
    return np.select([target < player_row, target > player_row], [2, 4], 0)


def random_policy(rng: np.random.Generator):
    return shared.random_policy(rng, len(ACTIONS))


def native_episodes(policy, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return shared.first_episodes(Asterix, policy, n, seed)


def reference_episodes(policy, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same for the reference, with the native env's 1,000-step limit."""
    return shared.reference_episodes("asterix", ACTIONS, Asterix.max_episode_steps, policy, episodes, seed)




@pytest.mark.parametrize("policy_name", ["random", "gold_seeker"])
def test_episode_statistics_match_reference(policy_name: str) -> None:
    def policy(seed: int):
        return random_policy(np.random.default_rng(seed)) if policy_name == "random" else gold_seeker

    native_returns, native_lengths = native_episodes(policy(0), n=256, seed=1)
    ref_returns, ref_lengths = reference_episodes(policy(2), episodes=300 if policy_name == "random" else 200, seed=3)
    assert ref_returns.sum() > 0  # both policies pick up gold, so rewards and spawns are both checked
    assert_same_mean(native_returns, ref_returns, f"{policy_name} return")
    assert_same_mean(native_lengths, ref_lengths, f"{policy_name} length")


# ----------------------------------------------------------------- interface


def test_interface_and_seeding() -> None:
    env = Asterix(5, seed=11)
    assert Asterix.env_id == "MinAtar/Asterix-v1"
    assert env.act_dim == len(minatar.Environment("asterix").minimal_action_set()) == 5
    assert ACTIONS == tuple(minatar.Environment("asterix").minimal_action_set())
    assert env.obs_shape == (4, 10, 10) and env.obs_dim == 400
    obs = env.reset()
    assert obs.shape == (5, 400) and obs.dtype == torch.float32

    def rollout(seed: int) -> list[torch.Tensor]:
        env = Asterix(5, seed=seed)
        actions = torch.Generator().manual_seed(0)
        out = [env.reset()]
        for _ in range(200):
            step = env.step(torch.randint(5, (5,), generator=actions))
            out += [step.obs, step.reward, step.terminated]
        return out

    first, again, other = rollout(7), rollout(7), rollout(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda() -> None:
    env = Asterix(64, seed=0, device="cuda")
    obs = env.reset()
    start = time.perf_counter()
    for _ in range(300):
        step = env.step(torch.randint(5, (64,), device="cuda"))
    assert step.obs.device.type == "cuda" and step.reward.device.type == "cuda" and obs.device.type == "cuda"
    assert step.obs.shape == (64, 400)
    assert time.perf_counter() - start < 60
