"""EnvPool's autoreset step is flagged as not real, and seeding is deterministic."""

import numpy as np

from evosearch.envs.vector import VectorEnv


def _run_until_done(env: VectorEnv, steps: int = 600):
    env.reset()
    records = []
    for _ in range(steps):
        obs, reward, terminated, truncated, real = env.step(np.zeros(env.num_envs, dtype=np.int64))
        records.append((obs.copy(), reward.copy(), terminated | truncated, real.copy()))
    return records


def test_step_after_done_is_marked_not_real():
    env = VectorEnv("CartPole-v1", 2, seed=3)
    records = _run_until_done(env, 200)  # always pushing left ends CartPole within ~10 steps
    done_steps = [i for i, r in enumerate(records) if r[2][0]]
    assert done_steps, "CartPole pushed one way must end an episode"
    first = done_steps[0]
    assert records[first][3][0], "the step that ends an episode is real"
    assert not records[first + 1][3][0], "the autoreset step after it is not"
    assert records[first + 1][1][0] == 0.0
    assert records[first + 2][3][0], "the step after the reset is real again"
    assert not records[first + 1][2][0], "the autoreset step does not end an episode"


def test_same_seed_same_observations():
    a = _run_until_done(VectorEnv("Acrobot-v1", 3, seed=11), 50)
    b = _run_until_done(VectorEnv("Acrobot-v1", 3, seed=11), 50)
    c = _run_until_done(VectorEnv("Acrobot-v1", 3, seed=12), 50)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=False))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=False))


def test_spec_describes_discrete_and_continuous_tasks():
    assert VectorEnv("CartPole-v1", 1, 0).spec.discrete
    pendulum = VectorEnv("Pendulum-v1", 1, 0)
    assert not pendulum.spec.discrete and pendulum.spec.act_dim == 1
    obs, *_ = pendulum.step(np.array([[5.0]]))  # out-of-range actions are clipped, not rejected
    assert obs.shape == (1, 3)
