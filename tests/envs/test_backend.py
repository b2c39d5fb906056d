"""The tensor interface over both backends, and which backend a task gets."""

import pytest
import torch

from evosearch.envs.backend import BackendError, make_env, resolve_backend


def test_auto_takes_native_on_a_gpu_and_on_cpu_where_it_is_not_slower():
    assert resolve_backend("CartPole-v1", "auto", "cpu") == "native"
    assert resolve_backend("Acrobot-v1", "auto", "cpu") == "envpool"
    assert resolve_backend("Acrobot-v1", "auto", "cuda") == "native"
    assert resolve_backend("LunarLander-v3", "auto", "cuda") == "envpool"
    assert resolve_backend("Pendulum-v1", "native") == "native"


def test_auto_runs_natively_where_envpool_does_not_import(monkeypatch):
    """On a machine whose EnvPool wheel will not import (some GPU hosts), Acrobot still runs, natively."""
    import evosearch.envs.backend as backend

    monkeypatch.setattr(backend, "envpool_available", lambda: False)
    assert resolve_backend("Acrobot-v1", "auto", "cpu") == "native"
    assert resolve_backend("LunarLander-v3", "auto", "cpu") == "envpool"  # nothing else can run it: its error says so


def test_a_backend_that_cannot_run_the_task_is_refused_clearly():
    with pytest.raises(BackendError, match="no torch-native implementation"):
        resolve_backend("LunarLander-v3", "native")
    with pytest.raises(BackendError, match="unknown env backend"):
        resolve_backend("CartPole-v1", "gym")


@pytest.mark.parametrize("backend", ["native", "envpool"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_both_backends_give_the_same_shapes_and_types(env_id, backend):
    env = make_env(env_id, 5, seed=3, backend=backend)
    assert env.backend == backend
    obs = env.reset()
    assert obs.shape == (5, env.spec.obs_dim) and obs.dtype == torch.float32
    if env.spec.discrete:
        actions = torch.zeros(5, dtype=torch.long)
    else:
        actions = torch.zeros(5, env.spec.act_dim)
        assert env.action_low.shape == (env.spec.act_dim,)
    step = env.step(actions)
    assert step.obs.shape == step.final_obs.shape == (5, env.spec.obs_dim)
    assert step.reward.shape == step.terminated.shape == step.truncated.shape == (5,)
    assert step.terminated.dtype == step.truncated.dtype == torch.bool
    assert (step.real is None) == (backend == "native")
    env.close()


@pytest.mark.parametrize("backend", ["native", "envpool"])
def test_an_episode_of_cartpole_ends_with_its_final_observation(backend):
    env = make_env("CartPole-v1", 1, seed=0, backend=backend)
    env.reset()
    steps, step = 0, None
    while step is None or not bool(step.terminated[0]):
        step = env.step(torch.zeros(1, dtype=torch.long))  # always push left: the pole falls fast
        steps += 1
        assert steps < 50
    assert abs(float(step.final_obs[0, 2])) > 0.2  # the pole's angle past the 12-degree limit
    if backend == "native":  # same-step reset: the next observation is a fresh start
        assert float(step.obs[0].abs().max()) <= 0.05
