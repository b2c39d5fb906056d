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

``--executor ray`` measures the Ray executor against the local one instead, on this machine in
the same run: both measurements above through each executor (Ray started inside this process
with this machine's CPUs, one actor per evaluation slot, each actor ready before its timing
starts; the campaign in alternating parts, ray-local-local-ray, so that a change in the
machine's load weighs on both), and prints Ray's rate over the local one. The difference is the executor's
overhead: the same jobs run in the same sandbox on the same cores either way.

    python bench/campaign_rate.py [--suite quick[,classic-quick]] [--device auto|cpu|cuda] [--parallel 2]
                                  [--rounds 2] [--campaign-minutes 5] [--executor local|ray] [--json PATH]
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


def full_evaluations(suite: str, rounds: int, parallel: int, device: str = "auto", evaluator=None) -> dict:
    """Evaluate every baseline ``rounds`` times, ``parallel`` at once; returns rate and outcomes.

    ``evaluator``: one to measure (the Ray executor's), warmed up with ``parallel`` evaluations
    at once so every slot is warm; by default the local evaluator, warmed up with one.
    """
    programs = [Program.from_file(ROOT / "programs" / "rules" / f"{name}.py") for name in BASELINES] * rounds
    if evaluator is None:
        evaluator = RuleEvaluator(CascadeConfig(suite=suite, workers=1, task_timeout_s=600, device=device))
        evaluator.evaluate(programs[0])  # untimed: starts the warm workers (torch import) once
    else:
        with ThreadPoolExecutor(parallel) as pool:  # untimed: every slot's warm workers
            list(pool.map(evaluator.evaluate, programs[:parallel]))
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


def campaign(config_path: Path, minutes: float, suite: str, device: str = "auto", parallel: int = 2,
             evaluator=None) -> dict:
    """Run the quickstart campaign on ``suite`` for ``minutes`` in a scratch database; returns its rate.

    ``evaluator``: a started one to run it with (the Ray executor's); by default the config's, local.
    """
    from evosearch.campaign import Campaign

    config = load_config(config_path)
    config = replace(config, budget=replace(config.budget, max_evals=None, minutes=minutes), parallel=parallel,
                     evaluation=replace(config.evaluation, suite=suite, device=device))
    with tempfile.TemporaryDirectory(prefix="evosearch-bench-") as scratch:
        run = Campaign(config, db_path=Path(scratch) / "rate.db", evaluator=evaluator)
        start = time.perf_counter()
        try:
            summary = run.run(minutes=minutes)
        finally:
            run.close()
        wall = time.perf_counter() - start
    return {"evaluations": summary.evaluated_this_run, "wall_s": wall,
            "per_hour": summary.evaluated_this_run / wall * 3600, "outcomes": summary.outcomes,
            "best": summary.best}


def ray_evaluator(config_path: Path, suite: str, device: str, parallel: int):
    """The Ray executor for the quickstart config on ``suite``, ``parallel`` slots, started and ready."""
    from evosearch.config import ExecutorConfig
    from evosearch.executor.ray_pool import RayEvaluator

    config = load_config(config_path)
    config = replace(config, evaluation=replace(config.evaluation, suite=suite, device=device, workers=1),
                     executor=ExecutorConfig(kind="ray", cpus_per_evaluation=1, max_in_flight=parallel))
    return RayEvaluator.for_campaign(config)


def _process_tree(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root``."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {pid: commands.get(pid, "") for pid in found}


def _cpu_seconds(pids: set[int]) -> float:
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def ray_idle_cpu(seconds: float) -> dict:
    """CPU seconds Ray's processes (daemons, the idle actors and their warm sandbox workers) use doing nothing.

    The executor's fixed cost, which no evaluation pays for: measured in CPU time, so it does
    not depend on what else the machine runs. The local executor's warm workers are left out.
    """
    def ray_side() -> set[int]:
        tree = _process_tree(os.getpid())
        roots = {pid for pid, cmd in tree.items() if "raylet" in cmd or "gcs_server" in cmd}
        below = set(roots)
        for root in roots:
            below |= set(_process_tree(root))
        return below

    before, start = _cpu_seconds(ray_side()), time.perf_counter()
    time.sleep(seconds)
    used, wall = _cpu_seconds(ray_side()) - before, time.perf_counter() - start
    cores = os.cpu_count() or 1
    return {"cpu_s": used, "wall_s": wall, "share_of_machine": used / (wall * cores)}


def ray_versus_local(args: argparse.Namespace, suite: str) -> dict:
    """Both measurements through the local executor and through Ray, on this machine; Ray's rate over local's.

    The campaign runs in four parts of half ``--campaign-minutes`` each, in the order ray, local,
    local, ray, so that a drift in the machine's load during the measurement weighs on both alike.
    """
    figures: dict = {}
    if args.rounds > 0:
        local_full = full_evaluations(suite, args.rounds, args.parallel, args.device)
        print(f"  local, full evaluations: {local_full['evaluations']} in {local_full['wall_s']:.0f} s -> "
              f"{local_full['per_hour']:.0f}/hour", flush=True)
    started = time.perf_counter()
    evaluator = ray_evaluator(args.config, suite, args.device, args.parallel)
    figures["ray_start_s"] = time.perf_counter() - started
    print(f"  ray: started in {figures['ray_start_s']:.1f} s ({evaluator.slots} actors on "
          f"{evaluator.cluster['nodes']} node(s))", flush=True)
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    try:
        figures["ray_idle"] = idle = ray_idle_cpu(args.ray_idle_seconds)
        print(f"  ray, idle: {idle['cpu_s']:.2f} CPU s in {idle['wall_s']:.0f} s, "
              f"{100 * idle['share_of_machine']:.2f}% of the machine", flush=True)
        if args.rounds <= 0:
            return figures
        ray_full = full_evaluations(suite, args.rounds, args.parallel, args.device, evaluator=evaluator)
        print(f"  ray, full evaluations: {ray_full['evaluations']} in {ray_full['wall_s']:.0f} s -> "
              f"{ray_full['per_hour']:.0f}/hour; ray/local {ray_full['per_hour'] / local_full['per_hour']:.3f}",
              flush=True)
        figures["full_evaluations"] = {"local": local_full, "ray": ray_full,
                                       "ray_over_local": ray_full["per_hour"] / local_full["per_hour"],
                                       "same_scores": ray_full["scores"] == local_full["scores"]}
        if args.campaign_minutes > 0:
            part = args.campaign_minutes / 2
            for which in ("ray", "local", "local", "ray"):
                run = campaign(args.config, part, suite, args.device, args.parallel,
                               evaluator if which == "ray" else None)
                runs[which].append(run)
                print(f"  {which}, campaign part ({part:g} min): {run['evaluations']} evaluations in "
                      f"{run['wall_s']:.0f} s -> {run['per_hour']:.0f}/hour; load avg {os.getloadavg()[0]:.2f}",
                      flush=True)
    finally:
        evaluator.close()
    if args.campaign_minutes > 0:
        totals = {}
        for which, parts in runs.items():
            evaluations, wall = sum(r["evaluations"] for r in parts), sum(r["wall_s"] for r in parts)
            totals[which] = {"evaluations": evaluations, "wall_s": wall, "per_hour": evaluations / wall * 3600,
                             "parts": parts}
        ratio = totals["ray"]["per_hour"] / totals["local"]["per_hour"] if totals["local"]["per_hour"] else None
        print(f"  campaign ({args.campaign_minutes:g} min each): local {totals['local']['per_hour']:.0f}/hour, "
              f"ray {totals['ray']['per_hour']:.0f}/hour; ray/local {ratio:.3f}", flush=True)
        figures["campaign"] = {**totals, "ray_over_local": ratio}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="quick", help="suite(s) to measure, comma-separated (quickstart: quick)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--rounds", type=int, default=2, help="times each baseline is evaluated")
    parser.add_argument("--parallel", type=int, default=2, help="evaluations at once")
    parser.add_argument("--device", default="auto", help="where training runs: auto, cpu, cuda or cuda:N")
    parser.add_argument("--campaign-minutes", type=float, default=5.0, help="0 skips the campaign measurement")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="ray: measure the Ray executor against the local one, in this run")
    parser.add_argument("--ray-idle-seconds", type=float, default=30.0,
                        help="with --executor ray: how long to measure Ray's own CPU use while idle")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    gpu = _gpu_name() if args.device != "cpu" else None
    print(f"machine: {machine_description()}{f'; GPU {gpu}' if gpu else ''}; load avg {os.getloadavg()[0]:.2f}; "
          f"device {args.device}; {args.parallel} evaluations at once\n", flush=True)
    result: dict = {"machine": machine_description(), "gpu": gpu, "device": args.device,
                    "date": time.strftime("%Y-%m-%d"), "parallel": args.parallel, "suites": {}, "skipped": {}}
    if args.executor == "ray":
        import ray

        result.update(executor="ray versus local", ray=ray.__version__, load_avg_start=os.getloadavg()[0])
        for suite in [x.strip() for x in args.suite.split(",") if x.strip()]:
            print(f"suite {suite}: ray versus local, {args.parallel} evaluations at once", flush=True)
            result["suites"][suite] = ray_versus_local(args, suite)
        result["load_avg_end"] = os.getloadavg()[0]
        if args.json is not None:
            args.json.write_text(json.dumps(no_nan(result), indent=2) + "\n")
            print(f"wrote {args.json}")
        return 0
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
