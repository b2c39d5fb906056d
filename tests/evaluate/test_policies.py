"""Policies as programs: the referee plays them, and hostile ones end with clear outcomes."""

from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from evosearch.envs.spaces import EnvSpaces, spaces
from evosearch.evaluate import CascadeConfig, PolicyEvaluator
from evosearch.evaluate.referee import PolicyError, check_actions
from evosearch.kinds import detect, get
from evosearch.program import Program

SUITE = str(ROOT / "tests" / "data" / "policy_tiny.yaml")
POLICIES = ROOT / "programs" / "policies"


def policy(body: str, env_id: str = "CartPole-v1") -> Program:
    source = f'"""A test policy."""\n\nimport numpy as np\n\nENV_ID = "{env_id}"\n\n{body}\n'
    return Program(source=source, kind="policy", name="test_policy.py")


@pytest.fixture(scope="module")
def evaluator():
    return PolicyEvaluator(CascadeConfig(suite=SUITE, smoke_timeout_s=3.0, task_timeout_s=60.0), None)


def test_a_baseline_policy_is_played_and_scored(evaluator):
    result = evaluator.evaluate(Program.from_file(POLICIES / "cartpole.py", kind="policy"))
    assert result.outcome == "ok", result.error
    task = result.tasks["CartPole-v1"]
    assert task.returns == [500.0, 500.0] and result.score == pytest.approx(1.0)
    assert result.fingerprint and 0.0 < result.behaviour["action_smoothness"] < 1.0


def test_same_policy_same_score_and_fingerprint(evaluator):
    a = evaluator.evaluate(policy("def act(obs):\n    return (obs[:, 2] > 0).astype(np.int64)"))
    b = evaluator.evaluate(policy("def act(obs):\n    return np.where(obs[:, 2] > 0, 1, 0)"))
    assert a.outcome == b.outcome == "ok"
    assert a.tasks["CartPole-v1"].returns == b.tasks["CartPole-v1"].returns
    assert a.fingerprint == b.fingerprint  # same behaviour, different spelling


HOSTILE = {
    "wrong shape": ("def act(obs):\n    return np.zeros((len(obs), 2), dtype=np.int64)", "candidate_error",
                    "returned shape (256, 2) for 256 observations"),
    "wrong dtype": ("def act(obs):\n    return np.array(['left'] * len(obs))", "candidate_error", "dtype"),
    "out of range": ("def act(obs):\n    return np.full(len(obs), 7)", "candidate_error", "valid actions are 0..1"),
    "NaN": ("def act(obs):\n    return np.full(len(obs), np.nan)", "candidate_error", "non-integer"),
    "a list of objects": ("def act(obs):\n    return [None] * len(obs)", "candidate_error", "dtype object"),
    "raises": ("def act(obs):\n    raise ValueError('no idea')", "candidate_error", "ValueError: no idea"),
    "hangs": ("def act(obs):\n    while True:\n        pass", "timeout", "did not answer in time"),
    "exits": ("import sys\n\ndef act(obs):\n    sys.exit(0)", "rejected", "import of 'sys'"),
    "opens a file": ("def act(obs):\n    open('/tmp/x', 'w')\n    return np.zeros(len(obs), dtype=int)", "rejected",
                     "'open' is not allowed"),
    "no act": ("def policy(obs):\n    return 0", "rejected", "act(obs)"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_policies_get_clear_outcomes(evaluator, name):
    body, outcome, message = HOSTILE[name]
    result = evaluator.evaluate(policy(body))
    assert result.outcome == outcome, (result.outcome, result.error)
    assert message in result.error, result.error
    assert result.score is None
    assert result.wall_s < 30  # a hung policy is stopped when it misses its answer, not at the 60 s job limit


def test_a_policy_that_reaches_for_the_environment_finds_none(evaluator, tmp_path):
    """With the static check off (as a bypass would be), the OS layers and the referee still hold.

    The policy looks once, on its first batch: a scan of every object in a process with torch and
    scipy loaded takes about a second, too slow for every step of an episode.
    """
    loose = PolicyEvaluator(CascadeConfig(suite=SUITE, smoke_timeout_s=10.0, task_timeout_s=60.0,
                                          static_check=False), None)
    marker = tmp_path / "touched"
    body = (f"import gc\n\nLOOKED = []\n\ndef act(obs):\n    if not LOOKED:\n        LOOKED.append(True)\n"
            f"        try:\n            open({str(marker)!r}, 'w').write('x')\n"
            "        except OSError:\n            pass\n"
            "        modules = [(o, str(type(o).__module__)) for o in gc.get_objects()]  # not always a str\n"
            "        envs = [o for o, m in modules if m.split('.')[0] in ('envpool', 'gymnasium')\n"
            "                or m.startswith('evosearch.envs')]\n"
            "        assert not envs, envs\n"
            "    return (obs[:, 2] > 0).astype(np.int64)")
    result = loose.evaluate(policy(body))
    assert result.outcome == "ok", result.error
    assert not marker.exists()


def test_a_policy_for_an_env_outside_the_suite_is_rejected_with_its_tasks(evaluator):
    result = evaluator.evaluate(policy("def act(obs):\n    return np.zeros(len(obs), dtype=int)", "Walker2d-v4"))
    assert result.outcome == "rejected" and "has no task Walker2d-v4" in result.error


def test_kind_and_env_are_read_without_running_the_program():
    source = (POLICIES / "lunarlander.py").read_text()
    assert detect(source).name == "policy" and get("policy").env_id(source) == "LunarLander-v3"
    assert detect((ROOT / "programs" / "rules" / "a2c.py").read_text()).name == "rule"


def test_actions_are_checked_against_the_environments_spaces():
    discrete = spaces("Acrobot-v1")  # 3 actions
    assert check_actions(np.array([[0], [2]]), 2, discrete).tolist() == [0, 2]
    assert check_actions(np.array([1.0, 2.0]), 2, discrete).dtype == np.int32
    with pytest.raises(PolicyError, match="valid actions are 0..2"):
        check_actions(np.array([0, 3]), 2, discrete)
    box = spaces("Pendulum-v1")  # one torque in [-2, 2]
    clipped = check_actions(np.array([5.0, -0.5]), 2, box)
    assert clipped.dtype == np.float32 and clipped.tolist() == [[2.0], [-0.5]]
    with pytest.raises(PolicyError, match="NaN"):
        check_actions(np.array([np.inf, 0.0]), 2, box)
    with pytest.raises(PolicyError, match="bool"):
        check_actions(np.array([True, False]), 2, discrete)
    wide = EnvSpaces("Reacher-ish", obs_dim=4, discrete=False, act_dim=2, low=(-1.0, -np.inf), high=(1.0, np.inf))
    assert check_actions(np.array([[3.0, 1e9], [-3.0, -1e9]]), 2, wide).tolist() == [[1.0, 1e9], [-1.0, -1e9]]
    with pytest.raises(PolicyError, match=r"expected \(2, 2\)"):
        check_actions(np.array([0.0, 1.0]), 2, wide)


def test_every_baseline_policy_passes_the_static_check():
    from evosearch.program import static_check

    for path in sorted(Path(POLICIES).glob("*.py")):
        assert static_check(path.read_text(), "policy") == [], path.name
        assert get("policy").env_id(path.read_text()), path.name
