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
cascade: an upper bound for it). Where EnvPool does not import (some GPU hosts) the reference
is skipped, said so, and the rest is measured. ``--suite`` takes several suites (each measured
in turn); ``--device cuda`` trains on the GPU, named in the output.

    python bench/campaign_rate.py [--suite quick[,classic-quick]] [--device auto|cpu|cuda] [--parallel 2]
                                  [--rounds 2] [--campaign-minutes 5] [--json PATH]
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
from eval_throughput import cleanrl_available, in_parallel  # noqa: E402

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


def full_evaluations(suite: str, rounds: int, parallel: int, device: str = "auto") -> dict:
    """Evaluate every baseline ``rounds`` times, ``parallel`` at once; returns rate and outcomes."""
    evaluator = RuleEvaluator(CascadeConfig(suite=suite, workers=1, task_timeout_s=600, device=device))
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


def campaign(config_path: Path, minutes: float, suite: str, device: str = "auto", parallel: int = 2) -> dict:
    """Run the quickstart campaign on ``suite`` for ``minutes`` in a scratch database; returns its rate."""
    from evosearch.campaign import Campaign

    config = load_config(config_path)
    config = replace(config, budget=replace(config.budget, max_evals=None, minutes=minutes), parallel=parallel,
                     evaluation=replace(config.evaluation, suite=suite, device=device))
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
    parser.add_argument("--suite", default="quick", help="suite(s) to measure, comma-separated (quickstart: quick)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--rounds", type=int, default=2, help="times each baseline is evaluated")
    parser.add_argument("--parallel", type=int, default=2, help="evaluations at once")
    parser.add_argument("--device", default="auto", help="where training runs: auto, cpu, cuda or cuda:N")
    parser.add_argument("--campaign-minutes", type=float, default=5.0, help="0 skips the campaign measurement")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    gpu = _gpu_name() if args.device != "cpu" else None
    print(f"machine: {machine_description()}{f'; GPU {gpu}' if gpu else ''}; load avg {os.getloadavg()[0]:.2f}; "
          f"device {args.device}; {args.parallel} evaluations at once\n", flush=True)
    result: dict = {"machine": machine_description(), "gpu": gpu, "device": args.device,
                    "date": time.strftime("%Y-%m-%d"), "parallel": args.parallel, "suites": {}, "skipped": {}}
    no_reference = cleanrl_available()
    ref_rate = None
    if no_reference:
        result["skipped"]["cleanrl-style reference"] = no_reference
        print(f"skipped: the CleanRL-style reference: {no_reference}", flush=True)
    else:
        reference = in_parallel("reference", [{"steps": REFERENCE_STEPS, "seeds": [s], "episodes": 8}
                                              for s in range(1, args.parallel + 1)])
        ref_rate = args.parallel * (max(1, REFERENCE_STEPS // 512) * 512) / max(r["wall_s"] for r in reference)
        result["reference"] = {"agent_steps_per_s": ref_rate}
    for suite in [x.strip() for x in args.suite.split(",") if x.strip()]:
        steps = agent_steps_per_candidate(suite)
        figures: dict = {"agent_steps_per_candidate": steps}
        print(f"suite {suite}: {steps:,} agent-steps per candidate that passes the hurdle", flush=True)
        ref_per_hour = ref_rate / steps * 3600 if ref_rate else None
        if ref_per_hour:
            figures["reference_per_hour_upper_bound"] = ref_per_hour
            print(f"  reference (CleanRL-style loop, {args.parallel} processes): {ref_rate:,.0f} agent-steps/s -> at "
                  f"most {ref_per_hour:.0f} evaluations/hour of this suite (training alone)", flush=True)
        full = full_evaluations(suite, args.rounds, args.parallel, args.device)
        versus = f", {full['per_hour'] / ref_per_hour:.1f}x the reference" if ref_per_hour else ""
        print(f"  full evaluations: {full['evaluations']} in {full['wall_s']:.0f} s -> {full['per_hour']:.0f}/hour "
              f"({full['per_hour'] / TARGET_PER_HOUR:.2f}x the {TARGET_PER_HOUR}/hour target{versus}); "
              f"outcomes {full['outcomes']}", flush=True)
        figures["full_evaluations"] = full
        if args.campaign_minutes > 0:
            run = campaign(args.config, args.campaign_minutes, suite, args.device, args.parallel)
            print(f"  campaign ({args.config.name}, {args.campaign_minutes:g} min): {run['evaluations']} evaluations "
                  f"-> {run['per_hour']:.0f}/hour ({run['per_hour'] / TARGET_PER_HOUR:.2f}x the target); "
                  f"outcomes {run['outcomes']}; best {run['best']}", flush=True)
            figures["campaign"] = run
        result["suites"][suite] = figures
    if args.json is not None:
        args.json.write_text(json.dumps(no_nan(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _gpu_name() -> str | None:
    """The GPU's name from the driver's /proc files, without starting CUDA in this process (it forks workers)."""
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        for line in info.read_text().splitlines():
            if line.startswith("Model:"):
                return line.split(":", 1)[1].strip()
    return None


if __name__ == "__main__":
    raise SystemExit(main())
