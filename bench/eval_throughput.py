"""Throughput of the batched trainer harness against a single-seed CleanRL-style PPO loop.

Why: the harness exists to make training many seeds of a candidate rule cheap on a CPU. This
measures that claim in agent-steps per second (seeds x env steps / wall seconds) on
CartPole-v1 with PPO-clip at 1, 8 and 32 batched seeds, against ``bench/cleanrl_reference.py``
(CleanRL's ppo.py, one seed per run) in the same process and under the same thread limits, and
shows the trained agents' final returns beside it so a speed-up cannot hide a broken learner.

The returns are a sanity check, not a like-for-like algorithm comparison: the harness keeps
EnvPool's autoreset transitions out of the loss and bootstraps truncated episodes, the
reference (as CleanRL does) learns from both. Each run's clock includes building its envs and
networks; a short untimed warm-up of both trainers first pays one-off costs (lazy imports,
vmap tracing, allocator growth) so the first timed configuration is not penalised.

    PYTHONPATH=. python bench/eval_throughput.py [--steps N] [--seeds 1,8,32] [--quick] [--json PATH]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported, so every pool is single-threaded

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):  # works without PYTHONPATH and from any working directory
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _common import no_nan  # noqa: E402
from cleanrl_reference import evaluate_reference, train_reference  # noqa: E402

from evosearch.train.harness import TrainConfig, train  # noqa: E402
from evosearch.train.rule import Rule, load_rule  # noqa: E402
from evosearch.train.score import score_weights  # noqa: E402

ENV_ID = "CartPole-v1"
RULE_PATH = ROOT / "programs" / "rules" / "ppo_clip.py"
WARMUP_STEPS = 512  # one iteration of 4 envs x 128 steps

# gymnasium warns on every envpool space it builds (float64 bounds cast to float32).
warnings.filterwarnings("ignore", message=".*precision lowered.*")


@dataclass
class Row:
    """One configuration's figures, as printed and as written to JSON."""

    config: str
    seeds: int
    env_steps: int  # per seed
    wall_s: float  # summed over sequential runs
    agent_steps_per_s: float
    ratio: float  # to the reference's agent_steps_per_s
    return_mean: float  # mean over seeds of each seed's mean evaluation return
    return_std: float  # sample std over seeds (NaN for one seed)
    return_ci95: tuple[float, float]  # t-interval of the mean over seeds (NaN for one seed)
    returns: list[float]


def summarise(returns: list[float]) -> tuple[float, float, tuple[float, float]]:
    """Mean, sample std and a 95% t-interval over seeds; a t-interval because seeds are few."""
    values = np.asarray(returns, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), (float("nan"), float("nan"))
    from scipy.stats import t as student_t

    std = float(values.std(ddof=1))
    half = float(student_t.ppf(0.975, len(values) - 1)) * std / np.sqrt(len(values))
    return mean, std, (mean - half, mean + half)


def run_reference(steps: int, seeds: int, episodes: int, eval_seed: int) -> Row:
    """Train the reference once per seed, one after another, as a user would run CleanRL."""
    walls, returns = [], []
    for seed in range(1, seeds + 1):
        agent, wall = train_reference(steps, seed)
        walls.append(wall)
        returns.append(evaluate_reference(agent, episodes, eval_seed))
        print(f"  reference seed {seed}: {wall:6.1f}s, return {returns[-1]:6.1f}", flush=True)
    env_steps = max(1, steps // 512) * 512  # CleanRL's num_iterations * batch_size
    mean, std, ci = summarise(returns)
    return Row("cleanrl-style reference", seeds, env_steps, sum(walls), seeds * env_steps / sum(walls),
               1.0, mean, std, ci, returns)


def run_harness(rule: Rule, steps: int, seeds: int, episodes: int, eval_seed: int) -> Row:
    """Train ``seeds`` agents in one batched harness call and score them with the trusted scorer."""
    result = train(rule, TrainConfig(ENV_ID, steps), list(range(1, seeds + 1)))
    returns = [float(r) for r in score_weights(result.weights, ENV_ID, episodes, eval_seed)]
    mean, std, ci = summarise(returns)
    print(f"  harness x{seeds}: {result.wall_s:6.1f}s, return {mean:6.1f}", flush=True)
    return Row(f"harness ppo_clip x{seeds}", seeds, result.env_steps, result.wall_s,
               seeds * result.env_steps / result.wall_s, float("nan"), mean, std, ci, returns)


def machine() -> dict:
    """What the figures were measured on; the load average shows whether others shared the CPU."""
    return {
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "loadavg_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }




def fmt(x: float, spec: str = ".1f") -> str:
    return "n/a" if not np.isfinite(x) else format(x, spec)


def print_table(rows: list[Row]) -> None:
    header = f"{'configuration':<26}{'seeds':>6}{'agent-steps/s':>15}{'x ref':>8}{'final return':>17}{'95% CI':>17}"
    print(header)
    print("-" * len(header))
    for r in rows:
        ret = f"{fmt(r.return_mean)} ± {fmt(r.return_std)}"
        ci = "n/a" if not np.isfinite(r.return_ci95[0]) else f"[{r.return_ci95[0]:.0f}, {r.return_ci95[1]:.0f}]"
        print(f"{r.config:<26}{r.seeds:>6}{r.agent_steps_per_s:>15,.0f}{fmt(r.ratio, '.2f'):>8}{ret:>17}{ci:>17}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="env steps per seed (default 100000, --quick 20000)")
    parser.add_argument("--seeds", default="1,8,32", help="comma-separated batch sizes for the harness")
    parser.add_argument("--ref-seeds", type=int, default=3, help="sequential reference runs (for a CI on its return)")
    parser.add_argument("--episodes", type=int, default=32, help="evaluation episodes per trained agent")
    parser.add_argument("--eval-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20000 steps per seed")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (20_000 if args.quick else 100_000)
    batch_sizes = [int(s) for s in args.seeds.split(",") if s.strip()]

    info = machine()
    load = info["loadavg_1m_at_start"]
    print(f"machine: {info['processor']} | {info['cpu_count']} CPUs | torch {info['torch']} "
          f"({info['torch_threads']} thread) | python {info['python']} | "
          f"load avg {fmt(load if load is not None else float('nan'), '.2f')}")
    print(f"task: {ENV_ID}, PPO-clip, {steps} env steps per seed, 4 envs x 128 steps, "
          f"returns over {args.episodes} sampled episodes per agent\n", flush=True)

    rule = load_rule(RULE_PATH.read_text(), str(RULE_PATH))
    started = time.perf_counter()
    train(rule, TrainConfig(ENV_ID, WARMUP_STEPS), [0])  # untimed warm-up
    train_reference(WARMUP_STEPS, 0)

    reference = run_reference(steps, args.ref_seeds, args.episodes, args.eval_seed)
    rows = [reference]
    for seeds in batch_sizes:
        row = run_harness(rule, steps, seeds, args.episodes, args.eval_seed)
        row.ratio = row.agent_steps_per_s / reference.agent_steps_per_s
        rows.append(row)
    print()
    print_table(rows)
    print(f"\nagent-steps/s = seeds x env steps / wall s (wall includes env and network setup); "
          f"reference seeds run one after another. Total {time.perf_counter() - started:.0f}s.")

    if args.json is not None:
        payload = {"machine": info, "env_id": ENV_ID, "steps_per_seed": steps, "episodes": args.episodes,
                   "rows": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(no_nan(payload), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
