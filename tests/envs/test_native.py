"""The torch-native classic-control envs against gymnasium's own implementation, step by step.

The reference is ``gymnasium.make(env_id)`` itself (TimeLimit included), so these tests pin both the
physics and the episode bookkeeping (terminated vs truncated, same-step autoreset, final_obs).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")

from evosearch.envs.native import NATIVE_ENVS, NativeEnv, is_native, make_native  # noqa: E402

ENV_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"]

# gymnasium's reset distribution, per state variable: uniform in [low, high]
RESET_BOUNDS = {
    "CartPole-v1": ([-0.05] * 4, [0.05] * 4),
    "Acrobot-v1": ([-0.1] * 4, [0.1] * 4),
    "MountainCar-v0": ([-0.6, 0.0], [-0.4, 0.0]),
    "Pendulum-v1": ([-math.pi, -1.0], [math.pi, 1.0]),
}


def make_gym(env_id: str, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id)
    env.reset(seed=seed)
    return env


def gym_state(env) -> np.ndarray:
    return np.asarray(env.unwrapped.state, dtype=np.float64)


def random_actions(native: NativeEnv, rng: np.random.Generator, n: int) -> tuple[list, torch.Tensor]:
    """The same actions for gymnasium (a list, one per env) and for the native batch (a tensor).

    Pendulum's torques go past its +-2 bounds on purpose: both sides clip inside ``step``.
    """
    if native.discrete:
        acts = rng.integers(native.act_dim, size=n)
        return [int(a) for a in acts], torch.as_tensor(acts, dtype=torch.int64)
    acts = rng.uniform(-3.0, 3.0, size=(n, native.act_dim)).astype(np.float32)
    return list(acts), torch.as_tensor(acts)


def in_reset_bounds(env_id: str, state: torch.Tensor) -> bool:
    low, high = (torch.tensor(b, dtype=state.dtype) for b in RESET_BOUNDS[env_id])
    return bool(((state >= low - 1e-7) & (state <= high + 1e-7)).all())


def step_numpy(native: NativeEnv, actions: torch.Tensor) -> dict[str, np.ndarray]:
    out = native.step(actions)
    return {name: getattr(out, name).numpy() for name in ("obs", "reward", "terminated", "truncated", "final_obs")}


# ---------------------------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_matches_gymnasium_step_by_step(env_id: str) -> None:
    """Float32 batch of 3 against 3 gymnasium envs for 600 steps, re-syncing the state after each step."""
    n, steps = 3, 600
    gyms = [make_gym(env_id, seed=10 + i) for i in range(n)]
    native = make_native(env_id, n, seed=0)
    native.set_state(np.stack([gym_state(e) for e in gyms]), elapsed=0)
    rng = np.random.default_rng(0)
    ended = truncations = 0
    for _ in range(steps):
        gym_actions, actions = random_actions(native, rng, n)
        got = step_numpy(native, actions)
        for i, env in enumerate(gyms):
            obs, reward, terminated, truncated, _ = env.step(gym_actions[i])
            np.testing.assert_allclose(got["final_obs"][i], obs, atol=1e-5)
            np.testing.assert_allclose(got["reward"][i], reward, rtol=1e-6, atol=1e-5)
            assert got["terminated"][i] == terminated
            assert got["truncated"][i] == truncated
            if terminated or truncated:
                ended += 1
                truncations += truncated
                assert native.elapsed[i] == 0
                assert in_reset_bounds(env_id, native.state[i])
                np.testing.assert_array_equal(got["obs"][i], native.observe(native.state[i : i + 1])[0].numpy())
                env.reset()
            else:
                np.testing.assert_array_equal(got["obs"][i], got["final_obs"][i])
        native.set_state(np.stack([gym_state(e) for e in gyms]))  # elapsed is already in step with gymnasium
    assert ended >= 2
    if native.max_episode_steps <= steps // 2:
        assert truncations >= 1


@pytest.mark.parametrize(
    ("env_id", "steps"), [("CartPole-v1", 400), ("MountainCar-v0", 400), ("Pendulum-v1", 400), ("Acrobot-v1", 100)]
)
def test_float64_free_running_matches_gymnasium(env_id: str, steps: int) -> None:
    """In float64 the native physics tracks gymnasium's on its own, synced only at gymnasium's resets."""
    env = make_gym(env_id, seed=3)
    native = make_native(env_id, 1, seed=0, dtype=torch.float64)
    native.set_state(gym_state(env), elapsed=0)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        gym_actions, actions = random_actions(native, rng, 1)
        got = native.step(actions)
        obs, reward, terminated, truncated, _ = env.step(gym_actions[0])
        assert (bool(got.terminated[0]), bool(got.truncated[0])) == (terminated, truncated)
        np.testing.assert_allclose(got.final_obs[0].numpy(), obs, atol=1e-6)
        np.testing.assert_allclose(got.reward[0].item(), reward, rtol=1e-6)
        if terminated or truncated:
            env.reset()
            native.set_state(gym_state(env), elapsed=0)
        else:
            np.testing.assert_allclose(native.state[0].numpy(), gym_state(env), rtol=0, atol=1e-10)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_time_limit_matches_gymnasium(env_id: str) -> None:
    """Truncation comes from gymnasium's registry and lands on the same step as TimeLimit's."""
    max_steps = gym.spec(env_id).max_episode_steps
    assert NATIVE_ENVS[env_id].max_episode_steps == max_steps
    env = make_gym(env_id, seed=5)
    assert isinstance(env, gym.wrappers.TimeLimit)
    env._elapsed_steps = max_steps - 3
    native = make_native(env_id, 2, seed=0)
    native.set_state(gym_state(env), elapsed=torch.tensor([max_steps - 3, 0]))
    rng = np.random.default_rng(2)
    for k in range(3):
        gym_actions, actions = random_actions(native, rng, 2)
        got = native.step(actions)
        _, _, terminated, truncated, _ = env.step(gym_actions[0])
        assert not terminated
        assert truncated == (k == 2) == bool(got.truncated[0])
        assert not got.truncated[1]  # the other env's clock is its own
    assert native.elapsed.tolist() == [0, 3]
    assert in_reset_bounds(env_id, native.state[0])


def test_cartpole_terminated_and_truncated_on_the_same_step() -> None:
    """TimeLimit sets truncated even when the env also terminated; the native env does the same."""
    max_steps = gym.spec("CartPole-v1").max_episode_steps
    falling = np.array([2.399, 1.0, 0.0, 0.0])  # x crosses 2.4 on the next step
    env = make_gym("CartPole-v1", seed=0)
    env.unwrapped.state = falling.copy()
    env._elapsed_steps = max_steps - 1
    _, reward, terminated, truncated, _ = env.step(1)
    native = make_native("CartPole-v1", 1, seed=0)
    native.set_state(falling, elapsed=max_steps - 1)
    got = native.step(torch.tensor([1]))
    assert (terminated, truncated, reward) == (True, True, 1.0)
    assert (bool(got.terminated[0]), bool(got.truncated[0]), got.reward[0].item()) == (True, True, 1.0)


@pytest.mark.parametrize(
    ("env_id", "state", "action", "ends"),
    [
        ("MountainCar-v0", [0.49, 0.02], 2, True),  # reaches the flag
        ("MountainCar-v0", [-1.19, -0.03], 0, False),  # hits the left wall: velocity is zeroed
        ("Acrobot-v1", [math.pi - 0.3, 0.2, 3.0, -2.0], 1, True),  # tip above the bar; theta1 wraps
        ("Acrobot-v1", [-3.0, 3.0, -12.0, 27.0], 2, False),  # theta2 wraps twice, both velocities clip
        ("CartPole-v1", [0.0, 0.0, 0.2, 1.0], 1, True),  # the pole falls past 12 degrees
    ],
)
def test_rare_transitions_match_gymnasium(env_id: str, state: list[float], action: int, ends: bool) -> None:
    """Termination, the wall, wrapping and clipping are rare under random actions: hand-picked states."""
    env = make_gym(env_id, seed=0)
    env.unwrapped.state = np.array(state, dtype=np.float64)
    obs, reward, terminated, truncated, _ = env.step(action)
    assert terminated == ends
    native = make_native(env_id, 1, seed=0, dtype=torch.float64)
    native.set_state(np.array(state))
    got = native.step(torch.tensor([action]))
    np.testing.assert_allclose(got.final_obs[0].numpy(), obs, atol=1e-6)
    assert got.reward[0].item() == reward
    assert (bool(got.terminated[0]), bool(got.truncated[0])) == (terminated, truncated)
    # The state too, through the pure dynamics (step has already replaced it with a fresh start).
    next_state, _, _ = native.dynamics(torch.tensor([state], dtype=torch.float64), torch.tensor([action]))
    np.testing.assert_allclose(next_state[0].numpy(), gym_state(env), rtol=0, atol=1e-12)
    if env_id == "MountainCar-v0" and not ends:
        assert obs[0] == np.float32(-1.2) and obs[1] == 0.0


# ---------------------------------------------------------------------------------------------- batches


def test_envs_in_a_batch_are_independent() -> None:
    """One env ending resets that env alone, and each env steps exactly as it would on its own."""
    max_steps = NATIVE_ENVS["CartPole-v1"].max_episode_steps
    states = np.array(
        [
            [2.399, 1.0, 0.0, 0.0],  # terminates now
            [0.01, 0.0, 0.01, 0.0],
            [0.0, 0.1, -0.02, 0.1],  # truncates now
            [-0.03, 0.0, 0.0, -0.2],
        ]
    )
    native = make_native("CartPole-v1", 4, seed=0, dtype=torch.float64)
    native.set_state(states, elapsed=torch.tensor([7, 3, max_steps - 1, 0]))
    actions = torch.tensor([1, 0, 1, 1])
    got = native.step(actions)
    assert got.terminated.tolist() == [True, False, False, False]
    assert got.truncated.tolist() == [False, False, True, False]
    assert native.elapsed.tolist() == [0, 4, 0, 1]
    for i in range(4):
        alone = make_native("CartPole-v1", 1, seed=99, dtype=torch.float64)
        alone.set_state(states[i])
        # not bit-equal: a batch of 4 and a batch of 1 may take different SIMD paths through cos/sin
        torch.testing.assert_close(alone.step(actions[i : i + 1]).final_obs[0], got.final_obs[i], rtol=0, atol=1e-7)
    torch.testing.assert_close(got.obs[[1, 3]], got.final_obs[[1, 3]], rtol=0, atol=0)  # not reset
    assert not torch.equal(got.obs[0], got.final_obs[0]) and not torch.equal(got.obs[2], got.final_obs[2])

    # With staggered clocks, MountainCar's truncations arrive one env at a time.
    car = make_native("MountainCar-v0", 3, seed=1)
    car.set_state(np.array([-0.5, 0.0]), elapsed=torch.tensor([195, 197, 199]))
    first_truncation = []
    for t in range(6):
        out = car.step(torch.ones(3, dtype=torch.int64))
        first_truncation += [(i, t) for i in range(3) if out.truncated[i]]
    assert first_truncation == [(2, 0), (1, 2), (0, 4)]


def test_reset_and_seeding() -> None:
    for env_id in ENV_IDS:
        a, b, c = (make_native(env_id, 64, seed=s) for s in (7, 7, 8))
        first = a.reset()
        assert torch.equal(first, b.reset())
        assert not torch.equal(first, c.reset())
        assert in_reset_bounds(env_id, a.state) and a.elapsed.eq(0).all()
        # Same seed and actions: the same trajectories, resets included.
        rng = np.random.default_rng(0)
        for _ in range(250):
            _, actions = random_actions(a, rng, 64)
            sa, sb = a.step(actions), b.step(actions)
            assert torch.equal(sa.obs, sb.obs) and torch.equal(sa.reward, sb.reward)
        assert torch.equal(a.state, b.state)


# ---------------------------------------------------------------------------------------------- actions


def test_pendulum_clips_out_of_bounds_torque() -> None:
    native = make_native("Pendulum-v1", 4, seed=0, dtype=torch.float64)
    assert native.action_low.tolist() == [-2.0] and native.action_high.tolist() == [2.0]
    assert native.action_low.dtype == torch.float32
    state = np.array([[0.5, -0.3]] * 4)
    native.set_state(state)
    wild = native.step(torch.tensor([[5.0], [-7.0], [2.0], [-2.0]]))
    torch.testing.assert_close(wild.final_obs[0], wild.final_obs[2], rtol=0, atol=0)
    torch.testing.assert_close(wild.final_obs[1], wild.final_obs[3], rtol=0, atol=0)
    assert wild.reward[0] == wild.reward[2] and wild.reward[1] == wild.reward[3]
    env = make_gym("Pendulum-v1", seed=0)
    env.unwrapped.state = state[0].copy()
    obs, reward, *_ = env.step(np.array([5.0], dtype=np.float32))
    np.testing.assert_allclose(wild.final_obs[0].numpy(), obs, atol=1e-7)
    np.testing.assert_allclose(wild.reward[0].item(), reward, rtol=1e-6)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"])
def test_discrete_actions_as_integer_tensors(env_id: str) -> None:
    envs = [make_native(env_id, 6, seed=0) for _ in range(2)]
    for env in envs:
        env.set_state(np.stack([env.initial_state(1)[0].numpy()] * 6))
    actions = torch.arange(6) % envs[0].act_dim
    out64 = envs[0].step(actions.to(torch.int64))
    out32 = envs[1].step(actions.to(torch.int32))
    assert torch.equal(out64.final_obs, out32.final_obs)
    assert len({tuple(row.tolist()) for row in out64.final_obs}) == envs[0].act_dim  # each action differs


# ---------------------------------------------------------------------------------------------- tensors


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_step_returns_documented_tensors(env_id: str, dtype: torch.dtype) -> None:
    n = 5
    env = make_native(env_id, n, seed=0, dtype=dtype)
    obs = env.reset()
    assert obs.shape == (n, env.obs_dim) and obs.dtype == torch.float32
    assert env.state.dtype == dtype and env.state.shape == (n, env.state_dim)
    assert env.elapsed.dtype == torch.int64
    _, actions = random_actions(env, np.random.default_rng(0), n)
    out = env.step(actions)
    for name, shape, kind in [
        ("obs", (n, env.obs_dim), torch.float32),
        ("final_obs", (n, env.obs_dim), torch.float32),
        ("reward", (n,), torch.float32),
        ("terminated", (n,), torch.bool),
        ("truncated", (n,), torch.bool),
    ]:
        value = getattr(out, name)
        assert value.shape == shape and value.dtype == kind and value.device == env.device, name
    before = env.state.clone()
    out.obs.add_(1.0)  # a trainer may normalize observations in place: the env must not notice
    out.final_obs.add_(1.0)
    assert torch.equal(env.state, before)
    if not env.discrete:
        assert env.action_low.shape == env.action_high.shape == (env.act_dim,)
    else:
        assert env.action_low is None and env.action_high is None


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_never_reads_tensor_values_on_the_host(env_id: str) -> None:
    """Under FakeTensorMode tensors have no data, so any ``.item()``, ``bool(t)``, ``.nonzero()`` or
    numpy conversion in ``step`` would raise: passing means the step can run on a GPU without syncing."""
    fake = pytest.importorskip("torch._subclasses.fake_tensor")
    env = make_native(env_id, 8, seed=0)
    with fake.FakeTensorMode(allow_non_fake_inputs=True):
        actions = torch.zeros(8, dtype=torch.int64) if env.discrete else torch.zeros(8, env.act_dim)
        out = env.step(actions)
        out = env.step(actions)  # the second step starts from a state the first one produced
        assert out.obs.shape == (8, env.obs_dim)
        with pytest.raises(Exception):  # noqa: B017 - the check itself: a host read must fail here
            out.terminated.any().item()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_cuda_step_matches_cpu_without_syncing(env_id: str) -> None:
    n = 256
    cpu = make_native(env_id, n, seed=0, dtype=torch.float64)
    gpu = make_native(env_id, n, seed=0, device="cuda", dtype=torch.float64)
    gpu.set_state(cpu.state)
    _, actions = random_actions(cpu, np.random.default_rng(0), n)
    expected = cpu.step(actions)
    actions_gpu = actions.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = gpu.step(actions_gpu)
        gpu.step(actions_gpu)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert got.obs.device.type == "cuda" and got.reward.device.type == "cuda"
    torch.testing.assert_close(got.final_obs.cpu(), expected.final_obs, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got.reward.cpu(), expected.reward, atol=1e-6, rtol=1e-6)
    assert torch.equal(got.terminated.cpu(), expected.terminated)


# ---------------------------------------------------------------------------------------------- registry


def test_registry() -> None:
    minatar = sorted(env_id for env_id in NATIVE_ENVS if env_id.startswith("MinAtar/"))
    assert minatar == [f"MinAtar/{g}-v1" for g in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")]
    assert sorted(set(NATIVE_ENVS) - set(minatar)) == sorted(ENV_IDS)  # the MinAtar games have their own tests
    assert is_native("CartPole-v1") and not is_native("Breakout-v5")
    for env_id, cls in NATIVE_ENVS.items():
        if env_id in minatar:
            continue
        spec_env = make_gym(env_id, seed=0)
        assert cls.env_id == env_id
        assert cls.obs_dim == spec_env.observation_space.shape[0]
        space = spec_env.action_space
        assert cls.discrete == hasattr(space, "n")
        assert cls.act_dim == (space.n if cls.discrete else space.shape[0])
    with pytest.raises(KeyError) as err:
        make_native("Breakout-v5", 4, seed=0)
    assert isinstance(err.value, ValueError)
    assert "Breakout-v5" in str(err.value) and "CartPole-v1" in str(err.value)
