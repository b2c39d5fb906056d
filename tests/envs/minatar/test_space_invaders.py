"""The torch Space Invaders against ``minatar``'s own ``space_invaders.Env``, step by step and in distribution.

The game draws no random numbers of its own (only ``Environment.act``'s sticky actions do), so with
sticky actions off a step is a pure function of the state and the action, and the step-by-step test
compares every step exactly: observation, reward, termination and every internal field.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

minatar = pytest.importorskip("minatar")

import minatar_reference as shared  # noqa: E402
from minatar_reference import assert_same_mean, reference_obs  # noqa: E402

from evosearch.envs.native.minatar.space_invaders import SpaceInvaders  # noqa: E402

ACTIONS = SpaceInvaders.action_set  # n l r f


def reference(seed: int, sticky_action_prob: float) -> minatar.Environment:
    return shared.reference("space_invaders", seed, sticky_action_prob)


def native_state(game) -> dict[str, np.ndarray | int]:
    """The reference game's attributes as the native state dict."""
    return {
        "pos": game.pos,
        "aliens": game.alien_map.astype(bool),
        "friendly_bullets": game.f_bullet_map.astype(bool),
        "enemy_bullets": game.e_bullet_map.astype(bool),
        "alien_dir": game.alien_dir,
        "enemy_move_interval": game.enemy_move_interval,
        "alien_move_timer": game.alien_move_timer,
        "alien_shot_timer": game.alien_shot_timer,
        "ramp_index": game.ramp_index,
        "shot_timer": game.shot_timer,
    }


def stacked(states: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.stack([np.asarray(state[key]) for state in states]) for key in states[0]}




def randomise_start(game, rng: np.random.Generator) -> None:
    """Start an episode from a random game state, one of three kinds (the timers random in each):

    a few survivors of the first wave; the last alien with a bullet right under it, so the wave is
    cleared (and the game ramps) at once; or aliens and bullets scattered anywhere above row 9.
    """
    kind = rng.integers(3)
    cells = np.argwhere(game.alien_map)
    keep = cells[rng.choice(len(cells), size=1 if kind == 1 else int(rng.integers(1, 7)), replace=False)]
    game.alien_map[:] = 0
    game.alien_map[keep[:, 0], keep[:, 1]] = 1
    if kind == 1:
        game.f_bullet_map[keep[0, 0] + 1, keep[0, 1]] = 1
    if kind == 2:
        game.alien_map = (rng.random((10, 10)) < 0.15).astype(float)
        game.alien_map[9] = 0
        game.alien_map[int(rng.integers(9)), int(rng.integers(10))] = 1
        game.e_bullet_map = (rng.random((10, 10)) < 0.04).astype(float)
        game.f_bullet_map = (rng.random((10, 10)) < 0.04).astype(float)
        game.f_bullet_map[9] = 0  # a step always leaves row 9 of the cannon's bullets empty
    game.pos = int(rng.integers(10))
    game.alien_dir = int(rng.choice([-1, 1]))
    game.enemy_move_interval = int(rng.integers(6, 13))
    game.alien_move_timer = int(rng.integers(1 if kind == 1 else 0, game.enemy_move_interval + 1))
    game.alien_shot_timer = int(rng.integers(0, 11))
    game.shot_timer = int(rng.integers(0, 6))
    game.ramp_index = int(rng.integers(0, 7))


def aim(obs: np.ndarray) -> np.ndarray:
    """A scripted policy on flat observations ``[n, 600]``: get under the nearest alien column and fire,
    but step aside from an alien bullet about to land.

    Returns positions in the minimal action set (n l r f).
    """
    image = obs.reshape(-1, 6, 10, 10)
    n = image.shape[0]
    pos = image[:, 0, 9].argmax(1)
    offset = np.arange(10) - pos[:, None]
    order = np.where(image[:, 1].any(1), np.abs(offset) * 2 + (offset > 0), 100)
    target = order.argmin(1)
    wanted = np.select([target < pos, target > pos], [1, 2], 3)
    # the first of (wanted, n, l, r) whose column has no alien bullet on row 8, else wanted
    candidates = np.stack([wanted, np.zeros_like(wanted), np.ones_like(wanted), np.full_like(wanted, 2)], 1)
    step = np.array([0, -1, 1, 0])[candidates]
    landing = np.clip(pos[:, None] + step, 0, 9)
    safe = ~image[np.arange(n)[:, None], 5, 8, landing].astype(bool)
    return candidates[np.arange(n), safe.argmax(1)]


def test_matches_reference_step_by_step() -> None:
    """Eight reference games side by side in one native batch, re-synced before every step.

    Actions are a quarter random, the rest aimed (so waves get cleared and ramp); three of every four episodes
    start from a random state (see :func:`randomise_start`).
    """
    batch, steps = 8, 400
    refs = [reference(seed=i, sticky_action_prob=0.0) for i in range(batch)]
    env = SpaceInvaders(batch, seed=0)
    env._sticky_prob = torch.tensor(0.0)
    rng = np.random.default_rng(1)
    counts = dict.fromkeys(("episodes", "kills", "waves", "ramps", "turns", "alien_shots", "shots"), 0)
    for _ in range(steps):
        before = [native_state(ref.env) for ref in refs]
        env.set_state(stacked(before), elapsed=0)
        obs = np.stack([reference_obs(ref) for ref in refs])
        actions = np.where(rng.random(batch) < 0.25, rng.integers(len(ACTIONS), size=batch), aim(obs))

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
            game = ref.env
            if not terminal:  # the native env reset itself where the episode ended; else all fields agree
                for key, expected in native_state(game).items():
                    np.testing.assert_array_equal(env.state[key][i].numpy(), expected, err_msg=key)
            counts["kills"] += reward
            counts["waves"] += game.alien_map.sum() > before[i]["aliens"].sum()
            counts["ramps"] += game.ramp_index != before[i]["ramp_index"]
            counts["turns"] += game.alien_dir != before[i]["alien_dir"]
            counts["alien_shots"] += before[i]["alien_shot_timer"] == 0
            counts["shots"] += ACTIONS[actions[i]] == 5 and before[i]["shot_timer"] == 0
            if terminal:
                counts["episodes"] += 1
                ref.reset()
                if counts["episodes"] % 4:  # every fourth episode starts as the game does
                    randomise_start(game, rng)
    # the comparison covered every part of the game, ramping included
    assert counts["episodes"] >= 20 and counts["turns"] >= 50 and counts["alien_shots"] >= 200, counts
    assert counts["kills"] >= 100 and counts["shots"] >= 200, counts
    assert counts["waves"] >= 8 and counts["ramps"] >= 5, counts


def test_initial_state_and_autoreset_match_reference() -> None:
    ref = reference(seed=0, sticky_action_prob=0.0)
    env = SpaceInvaders(3, seed=0)
    for key, expected in native_state(ref.env).items():
        np.testing.assert_array_equal(env.state[key][0].numpy(), expected, err_msg=key)
    np.testing.assert_array_equal(env.reset()[0].numpy(), reference_obs(ref))

    # an alien bullet right above the cannon: the episode ends and restarts
    bullets = np.zeros((10, 10), dtype=bool)
    bullets[8, 5] = True
    env.set_state({"enemy_bullets": bullets})
    step = env.step(torch.zeros(3, dtype=torch.int64))
    assert step.terminated.all() and not step.truncated.any()
    assert step.final_obs.view(3, 6, 10, 10)[:, 5, 9, 5].all()
    np.testing.assert_array_equal(step.obs.numpy(), np.broadcast_to(reference_obs(ref), (3, 600)))
    assert (env.elapsed == 0).all()


# ----------------------------------------------------------------- distribution with sticky actions


def random_policy(rng: np.random.Generator):
    return shared.random_policy(rng, len(ACTIONS))


def native_episodes(policy, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return shared.first_episodes(SpaceInvaders, policy, n, seed)


def reference_episodes(policy, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same for the reference, with the native env's 1,000-step limit."""
    return shared.reference_episodes("space_invaders", ACTIONS, SpaceInvaders.max_episode_steps, policy, episodes, seed)




@pytest.mark.parametrize("policy_name", ["random", "aim"])
def test_episode_statistics_match_reference(policy_name: str) -> None:
    def policy(seed: int):
        return random_policy(np.random.default_rng(seed)) if policy_name == "random" else aim

    native_returns, native_lengths = native_episodes(policy(0), n=256, seed=1)
    ref_returns, ref_lengths = reference_episodes(policy(2), episodes=150 if policy_name == "random" else 100, seed=3)
    assert ref_returns.mean() > (10 if policy_name == "aim" else 2)  # the aimed policy survives and shoots
    assert_same_mean(native_returns, ref_returns, f"{policy_name} return")
    assert_same_mean(native_lengths, ref_lengths, f"{policy_name} length")


# ----------------------------------------------------------------- interface


def test_interface_and_seeding() -> None:
    env = SpaceInvaders(5, seed=11)
    assert SpaceInvaders.env_id == "MinAtar/SpaceInvaders-v1"
    assert ACTIONS == tuple(minatar.Environment("space_invaders").minimal_action_set())
    assert env.act_dim == 4
    assert env.obs_shape == (6, 10, 10) and env.obs_dim == 600
    obs = env.reset()
    assert obs.shape == (5, 600) and obs.dtype == torch.float32

    def rollout(seed: int) -> list[torch.Tensor]:
        env = SpaceInvaders(5, seed=seed)
        actions = torch.Generator().manual_seed(0)
        out = [env.reset()]
        for _ in range(200):
            step = env.step(torch.randint(4, (5,), generator=actions))
            out += [step.obs, step.reward, step.terminated]
        return out

    # the same seed gives the same trajectory; another seed's sticky actions give another one
    first, again, other = rollout(7), rollout(7), rollout(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda() -> None:
    env = SpaceInvaders(64, seed=0, device="cuda")
    obs = env.reset()
    for _ in range(300):
        step = env.step(torch.randint(4, (64,), device="cuda"))
    assert obs.device.type == step.obs.device.type == step.reward.device.type == "cuda"
    assert step.obs.shape == (64, 600) and step.terminated.dtype == torch.bool
