"""Metatune on a GPU: the population, the unrolled updates and the meta-gradient on CUDA, in and out of the sandbox.

Skipped where torch sees no GPU (this project's CI has none); run with ``pytest -m gpu``.
"""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT

from evosearch.metagrad.constants import lift
from evosearch.metagrad.run import MetatuneSettings, metatune
from evosearch.metagrad.tuner import MetaTuner, TunerConfig
from evosearch.train.harness import TrainConfig
from evosearch.train.rule import load_rule

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]

MISTUNED = (ROOT / "programs" / "examples" / "ppo_clip_mistuned.py").read_text()
TASK = TrainConfig(env_id="CartPole-v1", total_steps=20480)


def test_the_meta_gradient_points_the_same_way_on_cuda_as_on_cpu():
    lifted = lift(MISTUNED, only=["ENT_COEF", "PG_COEF"])
    gradients = {}
    for device in ("cpu", "cuda"):
        rule = load_rule(lifted.parametric_source, preset={"CONSTANTS": [torch.zeros(())] * 2})
        tuner = MetaTuner(rule, [0.1, 0.3], [True, True], [TASK], TunerConfig(population=8, method="grad"),
                          device=device)
        gradients[device] = torch.stack([torch.tensor(tuner.step().gradient) for _ in range(5)]).mean(0)
        assert tuner.populations[0].weights["actor_w0"].device.type == device
    for device, gradient in gradients.items():  # less entropy bonus, more policy term (other random streams)
        assert gradient[0] < 0 < gradient[1], (device, gradient)


def test_metatune_runs_in_sandboxed_jobs_on_the_gpu():
    result = metatune(MISTUNED, [TASK], MetatuneSettings(meta_steps=4, steps_per_job=2, device="cuda",
                                                         tuner=TunerConfig(population=8)))
    assert len(result.records) == 4 and result.child_source != MISTUNED
