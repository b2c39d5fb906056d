"""The torch Seaquest against ``minatar``'s own ``seaquest.Env``, step by step and in distribution.

The step-by-step test is exact, spawns included: before each step the reference's internal state is
copied into the native env, the reference's random draws for that step are predicted from a copy of
its ``RandomState`` and handed to the native env in place of its own (``_spawn_draws``), and the two
step with the same action; then observation, reward, terminal and (where the episode goes on) every
list, in order, must agree. The native env's own draws are checked separately, in distribution.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

minatar = pytest.importorskip("minatar")

import minatar_reference as shared  # noqa: E402
from minatar_reference import assert_same_mean, reference_obs  # noqa: E402

from evosearch.envs.native.minatar.seaquest import ENEMY_SLOTS, Seaquest  # noqa: E402

ACTIONS = Seaquest.action_set
N, L, U, R, D, F = range(6)


def reference(seed: int, sticky_action_prob: float) -> minatar.Environment:
    return shared.reference("seaquest", seed, sticky_action_prob)




def _slots(rows: list[list], capacity: int, width: int) -> np.ndarray:
    out = np.zeros((capacity, width), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i] = [int(v) for v in row]
    return out


def native_state(game) -> dict[str, np.ndarray | int | bool]:
    """The reference game's attributes as the native state dict (free slots zeroed).

    Friendly bullets and divers fill their slots in list order; fish then subs fill the enemy slots,
    each list numbered in its order (``en_seq``); enemy bullets become per-cell counts.
    """
    assert len(game.f_bullets) <= 2 and len(game.divers) <= 2
    assert len(game.e_fish) + len(game.e_subs) <= ENEMY_SLOTS
    fb = _slots(game.f_bullets, 2, 3)
    dv = _slots(game.divers, 2, 4)
    enemies = [[*f, 0] for f in game.e_fish] + list(game.e_subs)
    en = _slots(enemies, ENEMY_SLOTS, 5)
    alive = np.arange(ENEMY_SLOTS) < len(enemies)
    seq = np.zeros(ENEMY_SLOTS, dtype=np.int64)
    seq[: len(enemies)] = list(range(len(game.e_fish))) + list(range(len(game.e_subs)))
    eb = np.zeros((2, 10, 10), dtype=np.int64)
    for x, y, right in game.e_bullets:
        eb[int(right), y, x] += 1
    return {
        "sub_x": game.sub_x, "sub_y": game.sub_y, "sub_or": bool(game.sub_or), "oxygen": game.oxygen,
        "diver_count": game.diver_count, "e_spawn_speed": game.e_spawn_speed,
        "e_spawn_timer": game.e_spawn_timer, "d_spawn_timer": game.d_spawn_timer,
        "move_speed": game.move_speed, "ramp_index": game.ramp_index, "shot_timer": game.shot_timer,
        "surface": bool(game.surface),
        "fb_alive": np.arange(2) < len(game.f_bullets), "fb_x": fb[:, 0], "fb_y": fb[:, 1],
        "fb_right": fb[:, 2].astype(bool),
        "dv_alive": np.arange(2) < len(game.divers), "dv_x": dv[:, 0], "dv_y": dv[:, 1],
        "dv_right": dv[:, 2].astype(bool), "dv_move": dv[:, 3],
        "en_alive": alive, "en_sub": alive & (np.arange(ENEMY_SLOTS) >= len(game.e_fish)), "en_seq": seq,
        "en_x": en[:, 0], "en_y": en[:, 1], "en_right": en[:, 2].astype(bool), "en_move": en[:, 3],
        "en_shot": en[:, 4], "eb": eb,
    }


def reference_lists(game) -> dict:
    """Everything the reference game holds, lists in their order, as plain ints."""
    def ints(rows: list[list]) -> list[list[int]]:
        return [[int(v) for v in row] for row in rows]

    scalars = ("sub_x", "sub_y", "sub_or", "oxygen", "diver_count", "e_spawn_speed", "e_spawn_timer",
               "d_spawn_timer", "move_speed", "ramp_index", "shot_timer", "surface")
    eb = np.zeros((2, 10, 10), dtype=np.int64)
    for x, y, right in game.e_bullets:
        eb[int(right), y, x] += 1
    return {**{key: int(getattr(game, key)) for key in scalars}, "f_bullets": ints(game.f_bullets),
            "divers": ints(game.divers), "e_fish": ints(game.e_fish), "e_subs": ints(game.e_subs),
            "e_bullets": eb.tolist()}


def native_lists(state: dict[str, torch.Tensor], i: int) -> dict:
    """The same view of native env ``i``: slots in list order (enemies by spawn number)."""
    s = {key: value[i].cpu().numpy() for key, value in state.items()}
    scalars = ("sub_x", "sub_y", "sub_or", "oxygen", "diver_count", "e_spawn_speed", "e_spawn_timer",
               "d_spawn_timer", "move_speed", "ramp_index", "shot_timer", "surface")
    fb = [[s["fb_x"][j], s["fb_y"][j], s["fb_right"][j]] for j in range(2) if s["fb_alive"][j]]
    dv = [[s["dv_x"][j], s["dv_y"][j], s["dv_right"][j], s["dv_move"][j]] for j in range(2) if s["dv_alive"][j]]
    order = np.argsort(s["en_seq"], kind="stable")
    fish = [[s["en_x"][j], s["en_y"][j], s["en_right"][j], s["en_move"][j]]
            for j in order if s["en_alive"][j] and not s["en_sub"][j]]
    subs = [[s["en_x"][j], s["en_y"][j], s["en_right"][j], s["en_move"][j], s["en_shot"][j]]
            for j in order if s["en_alive"][j] and s["en_sub"][j]]
    assert (s["dv_alive"][0] or not s["dv_alive"][1]) and (s["fb_alive"][0] or not s["fb_alive"][1])  # compact

    def ints(rows: list) -> list[list[int]]:
        return [[int(v) for v in row] for row in rows]

    return {**{key: int(s[key]) for key in scalars}, "f_bullets": ints(fb), "divers": ints(dv),
            "e_fish": ints(fish), "e_subs": ints(subs), "e_bullets": s["eb"].tolist()}


def predicted_draws(env: minatar.Environment) -> dict[str, bool | int]:
    """What the reference's next ``act`` will draw for its spawns, from a copy of its generator.

    ``Environment.act`` draws the sticky-action uniform first (even at probability 0); then, if the
    enemy spawn timer is 0, ``_spawn_enemy`` draws ``rand() < 1/2``, ``rand() < 1/3`` and
    ``randint(1, 9)`` (even if the spawn is then refused); then, if the diver spawn timer is 0,
    ``_spawn_diver`` draws ``rand() < 1/2`` and ``randint(1, 9)``. Values not drawn do not matter
    (the native env ignores them, as it ignores its own).
    """
    rng = np.random.RandomState()
    rng.set_state(env.random.get_state())
    rng.rand()
    draws = {"enemy_right": False, "enemy_sub": False, "enemy_y": 1, "diver_right": False, "diver_y": 1}
    if env.env.e_spawn_timer == 0:
        draws["enemy_right"] = rng.rand() < 1 / 2
        draws["enemy_sub"] = rng.rand() < 1 / 3
        draws["enemy_y"] = rng.randint(low=1, high=9)
    if env.env.d_spawn_timer == 0:
        draws["diver_right"] = rng.rand() < 1 / 2
        draws["diver_y"] = rng.randint(low=1, high=9)
    return draws


def ramp(game, times: int) -> None:
    """Surface ``times`` times' worth of the difficulty ramp (the reference's own rule), leaving the rest."""
    for _ in range(times):
        if game.e_spawn_speed > 1 or game.move_speed > 2:
            if game.move_speed > 2 and game.ramp_index % 2:
                game.move_speed -= 1
            if game.e_spawn_speed > 1:
                game.e_spawn_speed -= 1
            game.ramp_index += 1
    game.e_spawn_timer = min(game.e_spawn_timer, game.e_spawn_speed)


def oracle_action(game, mode: str, rng: np.random.Generator) -> int:
    """A policy that reads the reference's internals, built to reach every rule of the game.

    ``diver``: fetch divers, surface with them, shoot along the way; ``yoyo``: bob at the surface
    (every other step a surfacing, which ramps); ``deep``: stay down and shoot (oxygen runs out).
    A quarter of the actions are random.
    """
    if rng.random() < 0.25:
        return int(rng.integers(6))
    if mode == "yoyo":
        return D if game.sub_y == 0 else U
    if mode == "deep":
        if game.sub_y < 6:
            return D
        return F if game.shot_timer == 0 else int(rng.choice([L, R, N]))
    if game.diver_count != 0 and (game.oxygen < 40 or game.diver_count >= 3 or game.diver_count < 0):
        return U
    if game.divers:
        x, y = game.divers[-1][:2]
        if y != game.sub_y:
            return D if y > game.sub_y else U
        return R if x > game.sub_x else L
    if any(e[1] == game.sub_y for e in game.e_fish + game.e_subs) and game.shot_timer == 0:
        return F
    return D if game.sub_y < 3 else int(rng.choice([L, R, F]))


def start_episode(game, episode: int, rng: np.random.Generator) -> str:
    """Vary where an episode starts (as states the game reaches) so short episodes cover every rule."""
    kind = episode % 4
    if kind == 1:  # somewhere on the ramp, just below the surface with divers aboard (often all six)
        ramp(game, int(rng.integers(0, 25)))
        game.diver_count = int(rng.choice([6, rng.integers(0, 7)]))
        game.sub_y, game.surface, game.oxygen = 1, False, int(rng.integers(100, 200))
    elif kind == 2:  # little oxygen left
        game.oxygen = int(rng.integers(1, 30))
        game.diver_count = int(rng.integers(0, 3))
    elif kind == 3:  # fully ramped: an enemy every step, several can share a cell
        ramp(game, 25)
        game.diver_count = -1
    return ("diver", "yoyo", "deep", "diver")[episode % 4 if kind != 0 else (episode // 4) % 3]


def stacked(states: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.stack([np.asarray(state[key]) for state in states]) for key in states[0]}


def test_matches_reference_step_by_step() -> None:
    """Eight reference games side by side in one native batch, re-synced before every step."""
    batch, steps = 8, 300
    refs = [reference(seed=3 + i, sticky_action_prob=0.0) for i in range(batch)]
    env = Seaquest(batch, seed=0)
    env._sticky_prob = torch.tensor(0.0)
    rng = np.random.default_rng(4)
    episodes = 0
    modes = [start_episode(ref.env, 0, rng) for ref in refs]
    names = ("episodes", "enemy_spawns", "diver_spawns", "shots", "kills", "pickups", "surfacings", "bonus",
             "ramps", "no_oxygen", "no_diver", "enemy_shots", "shared_cell", "max_enemies")
    counts = dict.fromkeys(names, 0)
    for _ in range(steps):
        before = [reference_lists(ref.env) for ref in refs]
        env.set_state(stacked([native_state(ref.env) for ref in refs]), elapsed=0)
        predicted = [predicted_draws(ref) for ref in refs]
        draws = {key: torch.tensor([p[key] for p in predicted]) for key in predicted[0]}
        env._spawn_draws = lambda n, draws=draws: draws  # type: ignore[method-assign]
        actions = [oracle_action(ref.env, mode, rng) for ref, mode in zip(refs, modes, strict=True)]

        results = [ref.act(ACTIONS[a]) for ref, a in zip(refs, actions, strict=True)]
        step = env.step(torch.as_tensor(actions))

        expected_obs = np.stack([reference_obs(ref) for ref in refs])
        if not np.array_equal(step.final_obs.numpy(), expected_obs):
            np.testing.assert_array_equal(step.final_obs.numpy(), expected_obs)
        assert step.reward.dtype == torch.float32 and step.terminated.dtype == torch.bool
        assert step.reward.tolist() == [float(reward) for reward, _ in results]
        assert step.terminated.tolist() == [terminal for _, terminal in results]
        assert not step.truncated.any()
        for i, (ref, (reward, terminal)) in enumerate(zip(refs, results, strict=True)):
            b, game = before[i], ref.env
            if not terminal:  # the native env reset itself where the episode ended; else all fields agree
                assert native_lists(env.state, i) == reference_lists(game)
            counts["enemy_spawns"] += b["e_spawn_timer"] == 0
            counts["diver_spawns"] += b["d_spawn_timer"] == 0
            counts["shots"] += len(game.f_bullets) > len(b["f_bullets"])
            counts["kills"] += len(game.e_fish) + len(game.e_subs) < len(b["e_fish"]) + len(b["e_subs"]) and reward > 0
            counts["pickups"] += game.diver_count > b["diver_count"]
            counts["surfacings"] += game.oxygen == 200 and b["sub_y"] == 1 and game.sub_y == 0 and not terminal
            counts["bonus"] += b["diver_count"] == 6 and game.diver_count == -1
            counts["ramps"] += game.ramp_index > b["ramp_index"]
            counts["no_oxygen"] += terminal and b["oxygen"] <= 0
            counts["no_diver"] += terminal and b["diver_count"] == 0 and game.sub_y == 0 and not b["surface"]
            counts["enemy_shots"] += any(s[4] == 10 for s in game.e_subs) and bool(game.e_bullets)
            cells = [tuple(e[:2]) for e in game.e_fish] + [tuple(e[:2]) for e in game.e_subs]
            counts["shared_cell"] += len(set(cells)) < len(cells)
            counts["max_enemies"] = max(counts["max_enemies"], len(cells))
            if terminal:
                counts["episodes"] += 1
                episodes += 1
                ref.reset()
                modes[i] = start_episode(ref.env, episodes, rng)
    assert counts["episodes"] >= 30, counts
    for name in names[1:-1]:
        assert counts[name] >= 3, (name, counts)


def test_initial_state_and_autoreset_match_reference() -> None:
    ref = reference(seed=0, sticky_action_prob=0.0)
    env = Seaquest(3, seed=0)
    env._sticky_prob = torch.tensor(0.0)
    for i in range(3):
        assert native_lists(env.state, i) == reference_lists(ref.env)
    np.testing.assert_array_equal(env.reset()[0].numpy(), reference_obs(ref))

    # one step down and back up without a diver: the episode ends on surfacing and restarts
    env.step(torch.full((3,), D))
    step = env.step(torch.full((3,), U))
    assert step.terminated.all() and not step.truncated.any() and (step.reward == 0).all()
    assert step.final_obs.view(3, 10, 10, 10)[:, 0, 0, 5].all()  # the sub, on the surface
    np.testing.assert_array_equal(step.obs.numpy(), np.broadcast_to(reference_obs(ref), (3, 1000)))
    assert (env.elapsed == 0).all()


def test_spawn_draws_match_reference_distribution() -> None:
    """The native draws: side 1/2, sub 1/3, rows uniform on 1-8; then one spawning step uses them."""
    env = Seaquest(1, seed=5)
    draws = env._spawn_draws(200_000)
    for key, p in (("enemy_right", 1 / 2), ("enemy_sub", 1 / 3), ("diver_right", 1 / 2)):
        assert draws[key].dtype == torch.bool and abs(draws[key].float().mean().item() - p) < 0.005, key
    for key in ("enemy_y", "diver_y"):
        rows = torch.bincount(draws[key], minlength=10).float() / 200_000
        assert rows[0] == 0 and rows[9] == 0 and torch.allclose(rows[1:9], torch.full((8,), 1 / 8), atol=0.004)
    assert not torch.equal(draws["enemy_right"], draws["diver_right"])  # independent columns

    n = 4000
    env = Seaquest(n, seed=6)
    env._sticky_prob = torch.tensor(0.0)
    # a fish heading right on row 3 refuses left-heading spawns there, and only those
    alive = np.zeros(ENEMY_SLOTS, dtype=bool)
    alive[0] = True
    env.set_state({"en_alive": alive, "en_x": np.full(ENEMY_SLOTS, 4), "en_y": np.full(ENEMY_SLOTS, 3),
                   "en_right": alive, "en_move": np.full(ENEMY_SLOTS, 3), "e_spawn_timer": 0, "d_spawn_timer": 0})
    env.step(torch.zeros(n, dtype=torch.int64))
    s = env.state
    assert s["en_alive"][:, 0].all() and not s["en_alive"][:, 2:].any()  # a spawn takes the first free slot
    spawned, right, row = s["en_alive"][:, 1], s["en_right"][:, 1], s["en_y"][:, 1]
    assert abs((~spawned).float().mean().item() - 1 / 16) < 0.015  # P(left) * P(row 3)
    assert not (spawned & (row == 3) & ~right).any()
    assert torch.equal(s["en_x"][spawned, 1], torch.where(right[spawned], 0, 9))
    assert (s["en_move"][spawned, 1] == 4).all()  # spawned at move_speed 5, counted down in the same step
    assert (s["e_spawn_timer"] == 19).all() and (s["d_spawn_timer"] == 29).all()
    assert s["dv_alive"][:, 0].all() and not s["dv_alive"][:, 1].any()


# ----------------------------------------------------------------- distribution with sticky actions


def hunter(obs: np.ndarray) -> np.ndarray:
    """A hunter on flat observations ``[n, 1000]`` (MinAtar actions; all six are minimal).

    Heads for the row with the most enemies (row 4 when there are none), and on it turns toward the
    nearest enemy and fires; it never surfaces, so an episode lasts at most about 200 steps (the
    oxygen). Its return counts kills and its length how long it dodges, so both follow the enemies'
    spawning and movement closely.
    """
    image = obs.reshape(-1, 10, 10, 10) > 0
    n = len(obs)
    sub_row = image[:, 0].any(2).argmax(1)
    sub_col = image[:, 0].any(1).argmax(1)
    facing_right = image[:, 1].any(1).argmax(1) < sub_col
    enemies = image[:, 5] | image[:, 6]
    per_row = enemies.sum(2)
    target = np.where(per_row.any(1), per_row.argmax(1), 4)
    in_row = enemies[np.arange(n), sub_row]
    distance = np.where(in_row, np.abs(np.arange(10) - sub_col[:, None]), 99)
    nearest = distance.argmin(1)
    ahead = np.where(facing_right, nearest > sub_col, nearest < sub_col)
    turn = np.where(nearest > sub_col, R, L)
    return np.select(
        [target < sub_row, target > sub_row, in_row.any(1) & ahead, in_row.any(1)],
        [U, D, F, turn],
        N,
    )


def random_policy(rng: np.random.Generator):
    return shared.random_policy(rng, len(ACTIONS))


def native_episodes(policy, n: int, per_env: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return and length of each of ``n`` envs' first ``per_env`` episodes (default sticky actions).

    Every env's episodes are independent, so these ``n * per_env`` episodes are an unbiased sample
    (taking whatever episodes end by some step would favour the short ones).
    """
    env = Seaquest(n, seed=seed)
    obs = env.reset()
    returns = np.zeros((n, per_env))
    lengths = np.zeros((n, per_env), dtype=np.int64)
    done = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    while (done < per_env).any():
        step = env.step(torch.as_tensor(policy(obs.numpy()), dtype=torch.int64))
        live = done < per_env
        slot = np.minimum(done, per_env - 1)
        returns[rows[live], slot[live]] += step.reward.numpy()[live]
        lengths[rows[live], slot[live]] += 1
        done += live & (step.terminated | step.truncated).numpy()
        obs = step.obs
    return returns.reshape(-1), lengths.reshape(-1)


def reference_episodes(policy, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same for the reference, with the native env's 1,000-step limit."""
    return shared.reference_episodes("seaquest", ACTIONS, Seaquest.max_episode_steps, policy, episodes, seed)




@pytest.mark.parametrize("policy_name", ["random", "hunter"])
def test_episode_statistics_match_reference(policy_name: str) -> None:
    def policy(seed: int):
        return random_policy(np.random.default_rng(seed)) if policy_name == "random" else hunter

    # the hunter's episodes are about 200 steps (the oxygen), the random policy's about 30
    per_env, episodes = (4, 250) if policy_name == "random" else (2, 120)
    native_returns, native_lengths = native_episodes(policy(0), n=64, per_env=per_env, seed=1)
    ref_returns, ref_lengths = reference_episodes(policy(2), episodes=episodes, seed=3)
    assert ref_returns.sum() > 0 and native_returns.sum() > 0  # kills, so spawning and shooting are in play
    assert_same_mean(native_returns, ref_returns, f"{policy_name} return")
    assert_same_mean(native_lengths, ref_lengths, f"{policy_name} length")


# ----------------------------------------------------------------- interface


def test_interface_and_seeding() -> None:
    env = Seaquest(5, seed=11)
    assert Seaquest.env_id == "MinAtar/Seaquest-v1"
    assert env.act_dim == len(minatar.Environment("seaquest").minimal_action_set()) == 6
    assert ACTIONS == tuple(minatar.Environment("seaquest").minimal_action_set())
    assert env.obs_shape == (10, 10, 10) and env.obs_dim == 1000
    obs = env.reset()
    assert obs.shape == (5, 1000) and obs.dtype == torch.float32

    def rollout(seed: int) -> list[torch.Tensor]:
        env = Seaquest(5, seed=seed)
        actions = torch.Generator().manual_seed(0)
        out = [env.reset()]
        for _ in range(100):
            step = env.step(torch.randint(6, (5,), generator=actions))
            out += [step.obs, step.reward, step.terminated]
        return out

    first, again, other = rollout(7), rollout(7), rollout(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda() -> None:
    """The same seeded-draw-free step on CPU and CUDA (draws substituted), then a plain rollout."""
    n = 64
    cpu, gpu = Seaquest(n, seed=0), Seaquest(n, seed=0, device="cuda")
    for env in (cpu, gpu):
        env._sticky_prob = torch.tensor(0.0, device=env.device)
    rng = np.random.default_rng(0)
    for _ in range(300):
        draws = {"enemy_right": rng.random(n) < 0.5, "enemy_sub": rng.random(n) < 1 / 3,
                 "enemy_y": rng.integers(1, 9, n), "diver_right": rng.random(n) < 0.5, "diver_y": rng.integers(1, 9, n)}
        actions = torch.as_tensor(rng.integers(6, size=n))
        steps = []
        for env in (cpu, gpu):
            env._spawn_draws = lambda k, env=env, draws=draws: {  # type: ignore[method-assign]
                key: torch.as_tensor(value, device=env.device) for key, value in draws.items()}
            steps.append(env.step(actions.to(env.device)))
        for field in ("obs", "reward", "terminated", "final_obs"):
            assert torch.equal(getattr(steps[0], field), getattr(steps[1], field).cpu()), field
    env = Seaquest(n, seed=0, device="cuda")
    start = time.perf_counter()
    for _ in range(300):
        step = env.step(torch.randint(6, (n,), device="cuda"))
    assert step.obs.device.type == "cuda" and step.reward.device.type == "cuda"
    assert step.obs.shape == (n, 1000)
    assert time.perf_counter() - start < 60
