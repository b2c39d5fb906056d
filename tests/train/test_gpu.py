"""The CUDA path: training, scoring and sandboxed evaluation on a GPU with torch-native envs.

Skipped where torch sees no GPU (this project's CI has none); run with ``pytest -m gpu``.
"""

import pytest
import torch
from conftest import TINY_SUITE, rule_source

from evosearch.envs.backend import make_env
from evosearch.train.harness import TrainConfig, train
from evosearch.train.networks import Ensemble, sample_actions
from evosearch.train.rule import load_rule
from evosearch.train.score import random_returns, score_weights

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]


def test_ppo_clip_learns_cartpole_on_the_gpu_with_the_native_env():
    result = train(load_rule(rule_source("ppo_clip")), TrainConfig("CartPole-v1", 20480), [0, 1, 2, 3],
                   device="cuda")
    assert result.backend == "native" and result.device.startswith("cuda")
    trained = score_weights(result.weights, "CartPole-v1", 8, 0, device="cuda")
    assert trained.mean() > 2 * random_returns("CartPole-v1", 50, 0).mean()


def test_a_rollout_step_never_waits_on_the_device():
    env = make_env("Acrobot-v1", 4096, seed=0, device="cuda")
    model = Ensemble(env.spec, list(range(64)), device="cuda")
    generator = torch.Generator(device="cuda").manual_seed(0)
    obs = env.reset().view(64, 64, -1)
    with torch.no_grad():
        actor = model.folded("actor")
    torch.cuda.set_sync_debug_mode("error")  # any host round trip raises
    try:
        for _ in range(16):
            actions, _ = sample_actions(model, obs, generator, actor)
            obs = env.step(actions.view(-1)).obs.view(64, 64, -1)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_the_evaluator_trains_sandboxed_jobs_on_the_gpu():
    from evosearch.evaluate import CascadeConfig, RuleEvaluator
    from evosearch.program import Program

    evaluator = RuleEvaluator(CascadeConfig(suite=TINY_SUITE, device="cuda", workers=1))
    result = evaluator.evaluate(Program(source=rule_source("ppo_clip"), name="ppo_clip.py"))
    assert result.outcome == "ok", result.error
    assert all(task.device.startswith("cuda") for task in result.tasks.values())


def test_cuda_starts_inside_the_strongest_sandbox_mode_of_this_machine():
    """The target on a GPU machine: GPU jobs in a strong mode, no fallback; doctor's live check shows it."""
    import json
    import subprocess
    import sys

    from evosearch.sandbox import gpu

    gpu.forget()
    verdict = gpu.sandbox_for_gpu("cuda", "auto")
    assert verdict.mode.strong and not verdict.fell_back, verdict.failed
    doctor = subprocess.run([sys.executable, "-m", "evosearch.cli", "doctor", "--json"], capture_output=True,
                            text=True, timeout=600)
    report = json.loads(doctor.stdout)["gpu"]
    assert report is not None and report["starts"], report
