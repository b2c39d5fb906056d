"""Candidate evaluations per hour on the quickstart-sized suite, on this machine.

Why: a search is as good as the number of candidates it can afford to evaluate, and the
number a user sees is evaluations per hour of a campaign, not agent-steps per second. Two
measurements, both through the real evaluator (sandboxed jobs, the full cascade, trusted
scoring), two evaluations at once as in ``configs/quickstart.yaml``:

  full evaluations   the four baseline rules, each evaluated ``--rounds`` times: every one passes
                     the hurdle and trains the whole suite, the most a candidate can cost.
  campaign           the quickstart campaign itself (genetic operators, no LLM) for
                     ``--campaign-minutes`` in a scratch database: the real mix of candidates,
                     rejected ones included.

The reference, measured in the same run: the CleanRL-style loop of ``bench/cleanrl_reference.py``
(two processes, one per core) timed on CartPole-v1, and the evaluations per hour an evaluator
built on it could manage for the same agent-steps per candidate (training only, no scoring or
cascade: an upper bound for it).

    python bench/campaign_rate.py [--suite quick] [--rounds 2] [--campaign-minutes 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _common import no_nan  # noqa: E402
from eval_throughput import in_parallel  # noqa: E402

from evosearch.config import load_config  # noqa: E402
from evosearch.envs.suites import load_suite  # noqa: E402
from evosearch.evaluate import CascadeConfig, RuleEvaluator  # noqa: E402
from evosearch.machine import machine_description  # noqa: E402
from evosearch.program import Program  # noqa: E402

BASELINES = ("ppo_clip", "a2c", "reinforce", "dpo")
TARGET_PER_HOUR = 300
REFERENCE_STEPS = 20_480  # per reference seed: enough for a steady rate, short enough to be cheap

warnings.filterwarnings("ignore", message=".*precision lowered.*")


def agent_steps_per_candidate(suite_name: str) -> int:
    """Env steps a candidate that passes the hurdle trains, over every task and seed."""
    suite = load_suite(suite_name)
    steps = sum(task.total_steps for task in suite.tasks) * suite.seeds
    return steps + suite.hurdle.total_steps * suite.hurdle_seeds


def full_evaluations(suite: str, rounds: int, parallel: int) -> dict:
    """Evaluate every baseline ``rounds`` times, ``parallel`` at once; returns rate and outcomes."""
    evaluator = RuleEvaluator(CascadeConfig(suite=suite, workers=1, task_timeout_s=600))
    programs = [Program.from_file(ROOT / "programs" / "rules" / f"{name}.py") for name in BASELINES] * rounds
    evaluator.evaluate(programs[0])  # untimed: starts the warm workers (torch import) once
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(evaluator.evaluate, programs))
    wall = time.perf_counter() - start
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    return {"evaluations": len(results), "wall_s": wall, "per_hour": len(results) / wall * 3600,
            "mean_wall_per_evaluation_s": sum(r.wall_s for r in results) / len(results), "outcomes": outcomes,
            "scores": {p.name: r.score for p, r in zip(programs, results, strict=True)}}


def campaign(config_path: Path, minutes: float) -> dict:
    """Run the quickstart campaign for ``minutes`` in a scratch database; returns its rate."""
    from evosearch.campaign import Campaign

    config = load_config(config_path)
    config = replace(config, budget=replace(config.budget, max_evals=None, minutes=minutes))
    with tempfile.TemporaryDirectory(prefix="evosearch-bench-") as scratch:
        run = Campaign(config, db_path=Path(scratch) / "rate.db")
        start = time.perf_counter()
        try:
            summary = run.run(minutes=minutes)
        finally:
            run.close()
        wall = time.perf_counter() - start
    return {"evaluations": summary.evaluated_this_run, "wall_s": wall,
            "per_hour": summary.evaluated_this_run / wall * 3600, "outcomes": summary.outcomes,
            "best": summary.best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="quick", help="suite of the full evaluations (the quickstart's)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--rounds", type=int, default=2, help="times each baseline is evaluated")
    parser.add_argument("--parallel", type=int, default=2, help="evaluations at once")
    parser.add_argument("--campaign-minutes", type=float, default=5.0, help="0 skips the campaign measurement")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    print(f"machine: {machine_description()}; load avg {os.getloadavg()[0]:.2f}")
    steps = agent_steps_per_candidate(args.suite)
    print(f"suite {args.suite}: {steps:,} agent-steps per candidate that passes the hurdle; "
          f"{args.parallel} evaluations at once\n", flush=True)

    reference = in_parallel("reference", [{"steps": REFERENCE_STEPS, "seeds": [s], "episodes": 8}
                                          for s in range(1, args.parallel + 1)])
    ref_rate = args.parallel * (max(1, REFERENCE_STEPS // 512) * 512) / max(r["wall_s"] for r in reference)
    ref_per_hour = ref_rate / steps * 3600
    print(f"reference (CleanRL-style loop, {args.parallel} processes): {ref_rate:,.0f} agent-steps/s -> at most "
          f"{ref_per_hour:.0f} evaluations/hour of this suite (training alone)", flush=True)

    full = full_evaluations(args.suite, args.rounds, args.parallel)
    print(f"full evaluations: {full['evaluations']} in {full['wall_s']:.0f} s -> {full['per_hour']:.0f}/hour "
          f"({full['per_hour'] / TARGET_PER_HOUR:.2f}x the {TARGET_PER_HOUR}/hour target, "
          f"{full['per_hour'] / ref_per_hour:.1f}x the reference); outcomes {full['outcomes']}", flush=True)

    result = {"machine": machine_description(), "date": time.strftime("%Y-%m-%d"), "suite": args.suite,
              "agent_steps_per_candidate": steps, "parallel": args.parallel,
              "reference": {"agent_steps_per_s": ref_rate, "per_hour_upper_bound": ref_per_hour},
              "full_evaluations": full}
    if args.campaign_minutes > 0:
        run = campaign(args.config, args.campaign_minutes)
        print(f"campaign ({args.config.name}, {args.campaign_minutes:g} min): {run['evaluations']} evaluations "
              f"-> {run['per_hour']:.0f}/hour ({run['per_hour'] / TARGET_PER_HOUR:.2f}x the target); "
              f"outcomes {run['outcomes']}; best {run['best']}", flush=True)
        result["campaign"] = run
    if args.json is not None:
        args.json.write_text(json.dumps(no_nan(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
