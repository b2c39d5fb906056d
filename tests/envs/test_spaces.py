"""The spaces table against the real environments: EnvPool, the torch-native envs and gymnasium.

Every id in :data:`evosearch.envs.spaces.SPACES` must describe what the harness actually hands a
program (EnvPool through ``make_env``, the native env where there is one) and what gymnasium itself
declares (where gymnasium has the env and can build it here); other ids are read from EnvPool.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from evosearch.envs import spaces as spaces_module
from evosearch.envs.backend import make_env
from evosearch.envs.native import NATIVE_ENVS, NATIVE_ONLY, is_native_only
from evosearch.envs.spaces import (
    SPACES,
    EnvSpaces,
    UnknownEnvError,
    from_gym_spaces,
    known_env_ids,
    spaces,
)
from evosearch.envs.suites import available, load_suite

ENV_IDS = [env_id for env_id in known_env_ids() if not is_native_only(env_id)]  # EnvPool's and gymnasium's
MINATAR_IDS = sorted(NATIVE_ONLY)
pytestmark = pytest.mark.filterwarnings("ignore:.*precision lowered by casting:UserWarning")


def check_tensor_env(env_id: str, backend: str) -> None:
    """``make_env`` on ``backend``: spec, bounds and the observation a reset gives agree with the table."""
    expected = spaces(env_id)
    env = make_env(env_id, 2, seed=0, backend=backend)
    try:
        assert env.backend == backend
        assert (env.spec.obs_dim, env.spec.act_dim, env.spec.discrete) == (
            expected.obs_dim, expected.act_dim, expected.discrete)
        obs = env.reset()
        assert tuple(obs.shape) == (2, expected.obs_dim)
        if expected.discrete:
            assert env.action_low is None and env.action_high is None
        else:
            np.testing.assert_array_equal(env.action_low.cpu().numpy(), expected.action_low)
            np.testing.assert_array_equal(env.action_high.cpu().numpy(), expected.action_high)
    finally:
        env.close()


def test_the_table_covers_every_env_a_packaged_suite_names_and_the_policy_envs():
    named = {task.env_id for name in available() for task in load_suite(name).tasks}
    assert named <= set(known_env_ids())
    assert {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "LunarLander-v3"} <= set(known_env_ids())
    assert all(SPACES[env_id].env_id == env_id for env_id in SPACES)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_table_matches_envpool(env_id):
    check_tensor_env(env_id, "envpool")
    assert spaces_module._read_envpool(env_id) == SPACES[env_id]  # EnvPool's own spec, read as for unknown ids


@pytest.mark.parametrize("env_id", sorted(NATIVE_ENVS))
def test_the_table_matches_the_native_envs(env_id):
    cls, expected = NATIVE_ENVS[env_id], spaces(env_id)
    assert (cls.obs_dim, cls.act_dim, cls.discrete) == (expected.obs_dim, expected.act_dim, expected.discrete)
    check_tensor_env(env_id, "native")


@pytest.mark.parametrize("env_id", MINATAR_IDS)
def test_the_table_matches_the_minatar_package(env_id):
    """MinAtar's ids, spaces and minimal action sets are ``minatar.gym``'s ``-v1`` ones."""
    pytest.importorskip("minatar")
    from minatar.gym import BaseEnv

    game = {"SpaceInvaders": "space_invaders"}.get(env_id[8:-3], env_id[8:-3].lower())
    reference = BaseEnv(game, use_minimal_action_set=True)
    channels = reference.observation_space.shape[2]
    assert SPACES[env_id] == EnvSpaces(env_id, obs_dim=channels * 100, discrete=True,
                                       act_dim=int(reference.action_space.n))
    assert tuple(NATIVE_ENVS[env_id].action_set) == tuple(reference.action_set)
    assert NATIVE_ENVS[env_id].obs_shape == (channels, 10, 10)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_table_matches_gymnasium(env_id):
    gym = pytest.importorskip("gymnasium")
    if env_id not in gym.envs.registry:
        pytest.skip(f"gymnasium does not register {env_id} (EnvPool's own env)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            env = gym.make(env_id)
        except gym.error.DependencyNotInstalled as err:
            pytest.skip(f"gymnasium cannot build {env_id} here: {err}")
    try:
        assert from_gym_spaces(env_id, env.observation_space, env.action_space) == spaces(env_id)
        observation, _ = env.reset(seed=0)
        assert np.asarray(observation).size == spaces(env_id).obs_dim
    finally:
        env.close()


def test_other_ids_are_read_from_envpool_once_and_unknown_ids_fail_clearly(monkeypatch):
    monkeypatch.setattr(spaces_module, "_LOOKED_UP", {})
    real = spaces_module._read_envpool
    calls: list[str] = []

    def counting(env_id: str) -> EnvSpaces:
        calls.append(env_id)
        return real(env_id)

    monkeypatch.setattr(spaces_module, "_read_envpool", counting)
    continuous = spaces("MountainCarContinuous-v0")
    assert continuous == EnvSpaces("MountainCarContinuous-v0", obs_dim=2, discrete=False, act_dim=1,
                                   low=(-1.0,), high=(1.0,))
    assert spaces("MountainCarContinuous-v0") is continuous
    for _ in range(2):
        with pytest.raises(UnknownEnvError, match="no spaces for 'NoSuchEnv-v0'.*EnvPool could not describe it"):
            spaces("NoSuchEnv-v0")
    assert calls == ["MountainCarContinuous-v0", "NoSuchEnv-v0"]  # answers and failures are remembered
    with pytest.raises(ValueError, match="is not an environment id"):
        spaces('CartPole-v1"; import os')
    with pytest.raises(KeyError):
        spaces("")
    assert calls == ["MountainCarContinuous-v0", "NoSuchEnv-v0"]  # a malformed id is refused unread
    assert "MountainCarContinuous-v0" not in known_env_ids()


def test_dict_observations_flatten_as_the_vector_env_does():
    minigrid = spaces("MiniGrid-Empty-5x5-v0")
    assert minigrid.obs_fields == ("direction", "image", "mission") and minigrid.obs_dim == 1 + 7 * 7 * 3 + 96
    assert spaces("CartPole-v1").obs_fields == ()


def test_spaces_are_checked_and_give_float32_bounds():
    pendulum = spaces("Pendulum-v1")
    assert pendulum.action_low.dtype == np.float32 and pendulum.action_high.tolist() == [2.0]
    assert spaces("CartPole-v1").action_low is None
    with pytest.raises(ValueError, match="needs that many bounds"):
        EnvSpaces("X-v0", obs_dim=3, discrete=False, act_dim=2, low=(-1.0,), high=(1.0,))
    with pytest.raises(ValueError, match="has no bounds"):
        EnvSpaces("X-v0", obs_dim=3, discrete=True, act_dim=2, low=(0.0,), high=(1.0,))
    with pytest.raises(ValueError, match="must be positive"):
        EnvSpaces("X-v0", obs_dim=0, discrete=True, act_dim=2)
