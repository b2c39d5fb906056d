"""Agent-steps per second of the batched harness versus a CleanRL-style loop, same run, same CPU.

Trains PPO-clip on CartPole-v1 with the harness at 1, 8 and 32 batched seeds, and the
single-seed reference loop of ``bench/cleanrl_reference.py`` for a few seeds one after the
other, all with the same steps per seed and one torch thread. Prints agent-steps/s, the ratio
to the reference and the final return (trusted scorer for the harness, the same protocol for
the reference: 10 episodes per agent, sampling from the policy).

    python bench/eval_throughput.py [--steps 100000] [--seeds 1,8,32] [--ref-seeds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from cleanrl_reference import evaluate_reference, train_reference  # noqa: E402

from evosearch.envs.calibrate import machine_description  # noqa: E402
from evosearch.train.harness import TrainConfig, train  # noqa: E402
from evosearch.train.rule import load_rule  # noqa: E402
from evosearch.train.score import score_weights  # noqa: E402

PPO = Path(__file__).resolve().parents[1] / "programs" / "rules" / "ppo_clip.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="environment steps per seed")
    parser.add_argument("--seeds", default="1,8,32", help="batched seed counts for the harness")
    parser.add_argument("--ref-seeds", type=int, default=3, help="reference runs (one seed each)")
    parser.add_argument("--json", dest="json_path", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {machine_description()}; python {platform.python_version()}; 1 torch thread")
    print(f"PPO-clip on CartPole-v1, {args.steps} env steps per seed\n")

    rows = []
    ref_returns, ref_walls = [], []
    for seed in range(args.ref_seeds):
        agent, wall = train_reference(args.steps, seed)
        ref_walls.append(wall)
        ref_returns.append(evaluate_reference(agent, 10, seed))
    ref_rate = args.steps * args.ref_seeds / sum(ref_walls)
    rows.append({"config": "CleanRL-style loop (reference)", "seeds": args.ref_seeds, "steps_per_s": ref_rate,
                 "ratio": 1.0, "return_mean": float(np.mean(ref_returns)), "return_std": float(np.std(ref_returns))})

    rule_source = PPO.read_text()
    for seeds in [int(s) for s in args.seeds.split(",")]:
        result = train(load_rule(rule_source), TrainConfig(env_id="CartPole-v1", total_steps=args.steps),
                       list(range(seeds)))
        returns = score_weights(result.weights, "CartPole-v1", 10, 1)
        rate = seeds * result.env_steps / result.wall_s
        rows.append({"config": "evosearch harness (batched)", "seeds": seeds, "steps_per_s": rate,
                     "ratio": rate / ref_rate, "return_mean": float(returns.mean()), "return_std": float(returns.std()),
                     "vmap": result.used_vmap})

    print(f"{'configuration':<34}{'seeds':>6}{'agent-steps/s':>15}{'ratio':>8}{'final return':>18}")
    for r in rows:
        ret = f"{r['return_mean']:.1f} ± {r['return_std']:.1f}"
        print(f"{r['config']:<34}{r['seeds']:>6}{r['steps_per_s']:>15,.0f}{r['ratio']:>7.1f}x{ret:>18}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"machine": machine_description(), "steps": args.steps,
                                                    "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
