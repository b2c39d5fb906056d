"""Measure a suite's normalisation constants: random play and PPO-clip under this harness.

``R_ref`` must come from the same harness, budget and seeds that candidates get, or a
normalised score of 1.0 would not mean "as good as PPO-clip here".
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from evosearch import sandbox, stats
from evosearch.devices import DevicePool
from evosearch.envs.backend import resolve_backend
from evosearch.envs.native import is_native
from evosearch.envs.suites import Suite, Task, calibration_path
from evosearch.evaluate.jobs import RandomJob
from evosearch.evaluate.rules import gpu_warning, train_and_score
from evosearch.machine import machine_description
from evosearch.program import Program
from evosearch.sandbox import Limits, gpu, run_job

PPO_CLIP = Path(__file__).resolve().parents[2] / "programs" / "rules" / "ppo_clip.py"
RANDOM_EPISODES = 200


def _measure(program: Program, task: Task, suite: Suite, limits: Limits, log: Callable[[str], None],
             devices: DevicePool | None = None) -> dict:
    random_job = run_job(RandomJob(env_id=task.env_id, episodes=RANDOM_EPISODES, backend=task.backend), limits)
    if random_job.status != "ok":
        raise RuntimeError(f"random play on {task.env_id} failed: {random_job.error}")
    r_random = float(np.mean(random_job.result["returns"]))
    device = (devices or DevicePool("cpu")).for_task(gpu_native=is_native(task.env_id) and task.backend != "envpool")
    returns, _, wall = train_and_score(program, task, list(range(suite.seeds)), replace(limits, gpu=device != "cpu"),
                                       suite.eval_episodes, "calibration", device=device)
    reference = "programs/rules/ppo_clip.py"
    r_ref = float(np.mean(returns))
    if abs(r_ref - r_random) < 1e-3 * max(1.0, abs(r_random)) and task.fallback_reference is not None:
        log(f"{task.env_id}: PPO-clip {r_ref:.1f} is no better than random play {r_random:.1f}; "
            f"using the suite's fallback reference {task.fallback_reference:g}")
        reference, r_ref = "fallback_reference in the suite file (PPO-clip scored as random play)", \
            task.fallback_reference
    elif abs(r_ref - r_random) < 1e-3 * max(1.0, abs(r_random)):
        raise RuntimeError(
            f"PPO-clip scores {np.mean(returns):.1f} on {task.env_id}, the same as random play: its normalised "
            f"score would be undefined. Give the task more total_steps or drop it from suite {suite.name!r}.")
    lo, hi = stats.mean_ci(np.array(returns))
    log(f"{task.env_id}: random {r_random:.1f}, PPO-clip {np.mean(returns):.1f} [{lo:.1f}, {hi:.1f}] in {wall:.0f} s")
    return {
        "r_random": r_random, "r_ref": r_ref, "reference": reference, "r_ref_ci": [lo, hi],
        "r_ref_per_seed": [float(r) for r in returns], "train_wall_s": round(wall, 1),
        "total_steps": task.total_steps, "backend": resolve_backend(task.env_id, task.backend, device),
        "train": dict(task.train), "device": device,
    }


def calibrate(suite: Suite, reference: Path = PPO_CLIP, log: Callable[[str], None] = print,
              workers: int | None = None, device: str = "cpu") -> dict:
    """Measure every task (held-out included) and write ``NAME.calibration.json``.

    ``device`` as for an evaluation (``auto``, ``cpu``, ``cuda``, ``cuda:N``): a GPU-sized suite
    (``minatar``) is calibrated where it will be evaluated. Its GPU jobs run in the strongest
    sandbox mode where CUDA starts, as an evaluation's do.
    """
    program = Program.from_file(reference)
    limits = Limits(wall_s=3600 * 6 if device != "cpu" else 3600)
    devices = DevicePool(device)
    if devices.gpus:
        gpu.sandbox_for_gpu(devices.gpus[0], sandbox.requested_for(None), warn=gpu_warning)
    all_tasks = suite.tasks + suite.held_out
    with ThreadPoolExecutor(max(1, min(workers or os.cpu_count() or 1, len(all_tasks)))) as pool:
        measured = list(pool.map(lambda task: _measure(program, task, suite, limits, log, devices), all_tasks))
    tasks = {task.env_id: m for task, m in zip(all_tasks, measured, strict=True)}
    data = {
        "suite": suite.name,
        "measured": datetime.date.today().isoformat(),
        "machine": machine_description(),
        "reference": "programs/rules/ppo_clip.py",
        "seeds": suite.seeds,
        "eval_episodes": suite.eval_episodes,
        "tasks": tasks,
    }
    path = calibration_path(suite.name)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    record_resolution(suite.name)
    log(f"wrote {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def record_resolution(name: str) -> dict | None:
    """Write the suite's resolution (evosearch.envs.resolution) into its calibration file, from that file's data.

    Derived, not measured: the reference's per-seed returns the file holds give the ± of one
    evaluation at the suite's seed count, kept beside them so the file says how finely it resolves.
    """
    from evosearch.envs.resolution import resolution
    from evosearch.envs.suites import SuiteError, load_suite

    try:
        resolved = resolution(load_suite(name))
    except SuiteError:  # a suite given as a path: no shipped suite of that name to reload
        return None
    if resolved is None:
        return None
    path = calibration_path(name)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["resolution"] = {k: (round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v] if k == "ci" else v)
                          for k, v in resolved.to_dict().items() if k != "per_task_sd"}
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return data["resolution"]
