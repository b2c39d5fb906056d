"""A suite task may set its own training settings; they reach the trainer, and a bad one is refused by name."""

import numpy as np
import pytest
import torch
from conftest import RULES

from evosearch.envs.suites import SuiteError, load_suite
from evosearch.evaluate.rules import train_and_score, train_config
from evosearch.program import Program
from evosearch.sandbox import Limits

SUITE = """
name: tiny-train
seeds: 2
eval_episodes: 2
tasks:
  - env_id: CartPole-v1
    total_steps: 1024
    train: {num_envs: 2, num_steps: 64, hidden: 16, learning_rate: 0.001}
calibration:
  CartPole-v1: {r_random: 22.0, r_ref: 200.0}
"""


def write(tmp_path, text: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return str(path)


def test_a_tasks_training_settings_reach_the_trainer(tmp_path):
    suite = load_suite(write(tmp_path, SUITE))
    task = suite.tasks[0]
    assert dict(task.train) == {"hidden": 16, "learning_rate": 0.001, "num_envs": 2, "num_steps": 64}
    cfg = train_config(task)
    assert (cfg.num_envs, cfg.num_steps, cfg.hidden, cfg.learning_rate, cfg.update_epochs) == (2, 64, 16, 0.001, 4)
    returns, report, _ = train_and_score(Program.from_file(RULES / "ppo_clip.py"), task, [0, 1],
                                         Limits(wall_s=120), episodes=2)
    assert len(returns) == 2 and np.isfinite(returns).all()
    # 1024 steps per seed over 2 envs x 64 steps: 8 updates, a curve point after each (the default 4 x 128: 2)
    assert report["curve_steps"] == [128 * k for k in range(1, 9)]


@pytest.mark.parametrize(("setting", "message"), [
    ("{num_env: 4}", "unknown training setting(s) num_env"),
    ("{num_envs: 0}", "train.num_envs must be a positive int"),
    ("{num_envs: 2.5}", "train.num_envs must be a positive int"),
    ("{anneal_lr: 1}", "train.anneal_lr must be a positive bool"),
    ("{learning_rate: fast}", "train.learning_rate must be a positive float"),
    ("[1, 2]", "train must be a mapping"),
])
def test_a_bad_training_setting_is_refused_by_name(tmp_path, setting, message):
    text = SUITE.replace("{num_envs: 2, num_steps: 64, hidden: 16, learning_rate: 0.001}", setting)
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_suite(write(tmp_path, text))


def test_the_shipped_minatar_suites_train_as_the_literature_and_the_cpu_budget_say():
    literature = dict(load_suite("minatar").tasks[0].train)
    assert literature == {"hidden": 128, "learning_rate": 0.005, "num_envs": 64, "num_minibatches": 8,
                          "num_steps": 128, "update_epochs": 4}
    quick = load_suite("minatar-quick")
    assert all(dict(t.train)["num_envs"] == 16 for t in quick.tasks + quick.held_out)
    assert {t.env_id for t in load_suite("family-split").held_out} >= {"MinAtar/Asterix-v1", "LunarLander-v3"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the refusal is for machines without one")
def test_calibrating_on_a_gpu_that_is_not_here_is_a_usage_error():
    from conftest import cli_in_process

    proc = cli_in_process("suite", "calibrate", "minatar", "--device", "cuda")
    assert proc.returncode == 2 and "torch sees no CUDA GPU" in proc.stderr
