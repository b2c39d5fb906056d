"""Seconds and peak memory per meta-step of metatune, at K = 1, 4 and 16 unrolled updates.

Why: the meta-gradient's cost grows with K (the graph of K updates is kept for the backward
pass), and K is what buys a longer view of a constant's effect. The reference, measured in the
same run, is one plain iteration of the same agents' updates (no graph kept, no meta-objective):
the ratio says what tuning costs against training. Each K runs in its own process, so that its
peak resident memory is its own (on a GPU: ``torch.cuda.max_memory_allocated``).

The rule is the mis-tuned PPO-clip of ``programs/examples/ppo_clip_mistuned.py`` on CartPole-v1
with classic-quick's settings (8 agents x 4 envs x 128 steps, 4 epochs x 4 minibatches). The
method is ``grad`` for the timings (``auto`` adds ES for the clip constant: reported separately);
``--curve N`` also runs N meta-steps at K = 4 and prints the population's mean return and the
constants every 10 steps: the meta-objective's curve.

    python bench/metatune.py [--device cpu|cuda] [--steps 5] [--curve 60] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _common import no_nan  # noqa: E402

RULE = ROOT / "programs" / "examples" / "ppo_clip_mistuned.py"
INNER_STEPS = (1, 4, 16)


def _tuner(inner_steps: int, method: str, device: str, total_steps: int = 100_000):
    import torch

    from evosearch.metagrad.constants import lift
    from evosearch.metagrad.tuner import MetaTuner, TunerConfig
    from evosearch.train.harness import TrainConfig
    from evosearch.train.rule import load_rule

    torch.set_num_threads(1)
    lifted = lift(RULE.read_text())
    rule = load_rule(lifted.parametric_source)
    rule.module.__dict__["CONSTANTS"] = [torch.zeros(())] * len(lifted.constants)
    task = TrainConfig(env_id="CartPole-v1", total_steps=total_steps)
    config = TunerConfig(inner_steps=inner_steps, population=8, method=method)
    return MetaTuner(rule, [c.value for c in lifted.constants], [c.log_space for c in lifted.constants], [task],
                     config, device=device), lifted.names()


def _measure(inner_steps: int, method: str, steps: int, device: str, out) -> None:
    """In a child process: median seconds per meta-step, and this process's peak memory."""
    import torch

    tuner, _ = _tuner(inner_steps, method, device)
    tuner.step()  # untimed: first rollout, warm caches
    if device != "cpu":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        tuner.step()
        if device != "cpu":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device != "cpu"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out.put({"seconds": statistics.median(seconds), "peak_mb": peak, "memory": "cuda allocated" if device != "cpu"
             else "process max RSS"})


def _plain_iteration(steps: int, device: str, out) -> None:
    """In a child process: one iteration of the same agents' updates with no graph kept (the reference)."""
    import torch

    tuner, _ = _tuner(1, "grad", device)
    tuner.step()
    seconds = []
    for _ in range(steps):
        starts = tuner._starts()
        start = time.perf_counter()
        with torch.no_grad():
            tuner._updates(starts[0], tuner.theta.detach(), differentiable=False)
        tuner.populations[0].rollout(tuner.populations[0].weights)
        if device != "cpu":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    out.put({"seconds": statistics.median(seconds)})


def _in_child(target, *args) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def curve(meta_steps: int, device: str) -> list[dict]:
    tuner, names = _tuner(4, "auto", device)
    points = []
    for _ in range(meta_steps):
        record = tuner.step()
        points.append({"step": record.step, "return": record.returns["CartPole-v1"],
                       "constants": dict(zip(names, record.values, strict=True)), "seconds": record.seconds})
        if record.step % 10 == 0:
            shown = " ".join(f"{n}={v:.4g}" for n, v in points[-1]["constants"].items())
            print(f"  meta-step {record.step:>3}: mean return {record.returns['CartPole-v1']:.1f}  {shown}", flush=True)
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed meta-steps per K")
    parser.add_argument("--curve", type=int, default=0, help="also run this many meta-steps at K=4 (auto)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from evosearch.machine import machine_description

    gpu = None
    if args.device != "cpu":
        import torch

        gpu = torch.cuda.get_device_name(torch.device(args.device))
    print(f"machine: {machine_description()}{f'; GPU {gpu}' if gpu else ''}; load avg {os.getloadavg()[0]:.2f}; "
          f"device {args.device}\n", flush=True)
    result: dict = {"machine": machine_description(), "gpu": gpu, "device": args.device,
                    "date": time.strftime("%Y-%m-%d"), "rule": str(RULE.relative_to(ROOT)), "task": "CartPole-v1",
                    "population": 8, "inner_steps": {}}
    reference = _in_child(_plain_iteration, args.steps, args.device)
    result["plain_iteration_s"] = reference["seconds"]
    print(f"reference: one plain iteration (8 agents: 4x128-step rollout, 16 updates): {reference['seconds']:.3f} s")
    for k in INNER_STEPS:
        for method in ("grad", "auto"):
            figures = _in_child(_measure, k, method, args.steps, args.device)
            result["inner_steps"].setdefault(str(k), {})[method] = figures
            print(f"K={k:>2} {method:>4}: {figures['seconds']:.3f} s per meta-step "
                  f"({figures['seconds'] / reference['seconds']:.1f}x a plain iteration), "
                  f"peak {figures['peak_mb']:.0f} MiB ({figures['memory']})", flush=True)
    if args.curve:
        print(f"\nthe meta-objective's curve: {args.curve} meta-steps at K=4, method auto")
        result["curve"] = curve(args.curve, args.device)
    if args.json is not None:
        args.json.write_text(json.dumps(no_nan(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
