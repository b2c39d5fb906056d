"""Throughput of the trainer harness, on both env backends, against CleanRL's and PureJaxRL's PPO.

Why: the harness exists to make training many seeds of a candidate rule cheap, and a search is
as good as the number of candidates it can afford. This measures agent-steps per second (seeds
x env steps / wall seconds) of PPO-clip on CartPole-v1 with CleanRL's hyperparameters (4 envs
x 128 steps per seed, 4 epochs x 4 minibatches, 64-unit MLPs), in one run:

  reference      ``bench/cleanrl_reference.py`` (CleanRL's ppo.py on EnvPool), one seed per run,
                 the seeds one after another in one process: how a CleanRL user trains.
  reference x2   the same with two processes at once, one per core: the reference's best use
                 of this machine, for the per-core ratio.
  harness        ``evosearch.train.harness`` on the EnvPool and the torch-native backend, S seeds
                 batched in one process.
  harness x2     two such processes at once: how the evaluator uses two cores (a worker per
                 task or candidate).
  jax reference  ``bench/jax_reference.py``: PureJaxRL-style PPO, the whole run jitted and vmapped
                 over S seeds, on the harness's device (compilation not timed), at each S the
                 harness runs: the "x jax" column compares the harness with it at the same S.

A reference that cannot run here is skipped with the reason (CleanRL's needs EnvPool, whose
wheel does not import on some GPU machines; the JAX one needs JAX); the rows that can run are
still measured, and ratios to a skipped reference read n/a.

Every process runs one torch thread (faster than two for these small networks on 2 cores) and
an untimed warm-up before its clock starts, which then covers env and network setup. Returns
are scored the same way for every row (32 sampled episodes per agent), normalised so that
random play is 0 and the reference's mean is 1, and the harness's mean is checked against the
reference's 95% t-interval: a speed-up cannot hide a broken learner. The two are not the same
algorithm in one detail: the reference, like CleanRL, learns from EnvPool's autoreset
transitions and does not bootstrap truncated episodes; the harness does neither.

    python bench/eval_throughput.py [--steps N] [--seeds 8,64] [--ref-seeds 8] [--references cleanrl,jax]
                                    [--device cpu|cuda] [--quick] [--json PATH]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported, so every pool is single-threaded

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):  # works without PYTHONPATH and from any working directory
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _common import no_nan  # noqa: E402

ENV_ID = "CartPole-v1"
RULE_PATH = ROOT / "programs" / "rules" / "ppo_clip.py"
WARMUP_STEPS = 1024  # two iterations of 4 envs x 128 steps

# gymnasium warns on every envpool space it builds (float64 bounds cast to float32).
warnings.filterwarnings("ignore", message=".*precision lowered.*")


@dataclass
class Row:
    """One configuration's figures, as printed and as written to JSON."""

    config: str
    processes: int
    seeds: int  # in all processes together
    env_steps: int  # per seed
    wall_s: float  # the slowest process's clock
    agent_steps_per_s: float
    ratio: float = float("nan")  # to the reference's agent_steps_per_s
    per_core_ratio: float = float("nan")  # to the reference x2 (the reference's use of every core)
    jax_ratio: float = float("nan")  # to the JAX reference at the same number of seeds
    return_mean: float = float("nan")
    return_ci95: tuple[float, float] = (float("nan"), float("nan"))
    normalised: float = float("nan")  # (mean - random) / (reference mean - random)
    inside_reference_ci: bool | None = None
    returns: list[float] = field(default_factory=list)


def t_interval(values: list[float]) -> tuple[float, float]:
    """95% t-interval of the mean over seeds; a t-interval because reference seeds are few."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.975, len(x) - 1)) * float(x.std(ddof=1)) / np.sqrt(len(x))
    return float(x.mean()) - half, float(x.mean()) + half


# -- one process's work (runs in a spawned child, or inline) ------------------------------------


def cleanrl_available() -> str | None:
    """None if the CleanRL reference can run here, else why not."""
    try:
        import envpool  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means "not here"
        return f"EnvPool does not import ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return None


JAX_TRIES = 3
JAX_TIMEOUT_S = 600.0


def run_jax(steps: int, seeds: int, episodes: int, device: str) -> dict:
    """The JAX reference in a spawned process: its device memory and threads go when it ends.

    jaxlib 0.10's CPU runtime sometimes never finishes this program (a run stops in
    ``block_until_ready`` with every thread idle, about one run in four on a 2-core EPYC):
    a run that has not answered within ``JAX_TIMEOUT_S`` is killed and tried again, up to
    ``JAX_TRIES`` times, and the retries are reported with the figure.
    """
    import queue as queues

    ctx = mp.get_context("spawn")
    for attempt in range(1, JAX_TRIES + 1):
        answers = ctx.Queue()
        proc = ctx.Process(target=_jax_child, args=(steps, seeds, episodes, device, answers))
        proc.start()
        try:
            result = answers.get(timeout=JAX_TIMEOUT_S)
        except queues.Empty:
            proc.kill()
            proc.join()
            print(f"  jax reference x{seeds}: no answer within {JAX_TIMEOUT_S:.0f} s (attempt {attempt}), killed",
                  flush=True)
            continue
        proc.join()
        if "error" in result:
            raise RuntimeError(f"the JAX reference failed: {result['error']}")
        if attempt > 1:
            print(f"  jax reference x{seeds}: answered at attempt {attempt}", flush=True)
        return {**result, "attempts": attempt}
    raise TimeoutError(f"the JAX reference did not finish in {JAX_TRIES} tries of {JAX_TIMEOUT_S:.0f} s")


def _jax_child(steps: int, seeds: int, episodes: int, device: str, queue) -> None:  # noqa: ANN001
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave the GPU to the harness's rows
    try:
        from jax_reference import train_and_score

        queue.put(train_and_score(steps, seeds, episodes, device))
    except Exception as err:  # noqa: BLE001 - reported in the parent
        queue.put({"error": f"{type(err).__name__}: {err}"})


def _setup() -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*precision lowered.*")


def run_reference(steps: int, seeds: list[int], episodes: int, warm: bool = True) -> dict:
    """Train the reference once per seed, one after another, and score each agent."""
    from cleanrl_reference import evaluate_reference, train_reference

    _setup()
    if warm:
        train_reference(WARMUP_STEPS, 0)
    walls, returns = [], []
    for seed in seeds:
        agent, wall = train_reference(steps, seed)
        walls.append(wall)
        returns.append(evaluate_reference(agent, episodes, 0))
    return {"wall_s": sum(walls), "returns": returns, "env_steps": max(1, steps // 512) * 512}


def run_harness(steps: int, seeds: list[int], episodes: int, backend: str, warm: bool = True,
                device: str = "cpu") -> dict:
    """Train ``seeds`` in one batched harness call and score them with the trusted scorer."""
    from evosearch.train.harness import TrainConfig, train
    from evosearch.train.rule import load_rule
    from evosearch.train.score import score_weights

    _setup()
    rule = load_rule(RULE_PATH.read_text(), str(RULE_PATH))
    if warm:
        train(rule, TrainConfig(ENV_ID, WARMUP_STEPS, backend=backend), seeds[:2], device=device)
    result = train(rule, TrainConfig(ENV_ID, steps, backend=backend), seeds, device=device)
    returns = score_weights(result.weights, ENV_ID, episodes, 0, backend=backend, device=device)
    return {"wall_s": result.wall_s, "returns": [float(r) for r in returns], "env_steps": result.env_steps}


def _child(kind: str, kwargs: dict, barrier, queue) -> None:  # noqa: ANN001 - multiprocessing primitives
    work = run_reference if kind == "reference" else run_harness
    if kind == "reference":
        from cleanrl_reference import train_reference

        _setup()
        train_reference(WARMUP_STEPS, 0)
    else:
        run_harness(WARMUP_STEPS, kwargs["seeds"][:2], 2, kwargs["backend"], warm=False,
                    device=kwargs.get("device", "cpu"))
    barrier.wait()  # every process starts its clock together: they share the machine throughout
    queue.put(work(**kwargs, warm=False))


def in_parallel(kind: str, jobs: list[dict]) -> list[dict]:
    """Run one ``run_<kind>`` per process at once (spawned: no state shared with this one)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(kind, job, barrier, queue)) for job in jobs]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return results


def make_row(config: str, results: list[dict]) -> Row:
    seeds = sum(len(r["returns"]) for r in results)
    env_steps = results[0]["env_steps"]
    wall = max(r["wall_s"] for r in results)
    returns = [x for r in results for x in r["returns"]]
    return Row(config, len(results), seeds, env_steps, wall, seeds * env_steps / wall,
               return_mean=float(np.mean(returns)), return_ci95=t_interval(returns), returns=returns)


# -- the report ---------------------------------------------------------------------------------


def machine() -> dict:
    """What the figures were measured on; the load average shows whether others shared the CPU."""
    from evosearch.machine import cpu_model

    return {
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads_per_process": 1,
        "python": platform.python_version(),
        "loadavg_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def fmt(x: float, spec: str = ".1f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def print_table(rows: list[Row]) -> None:
    header = (f"{'configuration':<32}{'procs':>6}{'seeds':>6}{'agent-steps/s':>15}{'x ref':>8}{'x ref/core':>11}"
              f"{'x jax':>8}{'return':>9}{'95% CI':>15}{'normalised':>11}{'in ref CI':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ci = "n/a" if not np.isfinite(r.return_ci95[0]) else f"[{r.return_ci95[0]:.0f}, {r.return_ci95[1]:.0f}]"
        inside = "-" if r.inside_reference_ci is None else ("yes" if r.inside_reference_ci else "NO")
        print(f"{r.config:<32}{r.processes:>6}{r.seeds:>6}{r.agent_steps_per_s:>15,.0f}{fmt(r.ratio, '.1f'):>8}"
              f"{fmt(r.per_core_ratio, '.1f'):>11}{fmt(r.jax_ratio, '.2f'):>8}{fmt(r.return_mean):>9}{ci:>15}"
              f"{fmt(r.normalised, '.2f'):>11}{inside:>10}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="env steps per seed (default 100000, --quick 20480)")
    parser.add_argument("--seeds", default="8,64", help="comma-separated batch sizes for the harness")
    parser.add_argument("--backends", default="envpool,native", help="harness env backends to measure")
    parser.add_argument("--ref-seeds", type=int, default=8, help="reference runs (for a CI on its return); even")
    parser.add_argument("--episodes", type=int, default=32, help="evaluation episodes per trained agent")
    parser.add_argument("--quick", action="store_true", help="20480 steps per seed, 4 reference seeds")
    parser.add_argument("--device", default="cpu", help="where the harness trains (cuda: 4 envs per seed, so "
                        "--seeds 256,1024,4096,16384 spans 1k to 64k environments); the reference stays on CPU")
    parser.add_argument("--jax-timeout", type=float, default=None,
                        help="seconds after which a JAX reference run is killed and tried again "
                        "(default 120 on CPU, where jaxlib sometimes hangs, 900 on a GPU)")
    parser.add_argument("--references", default="cleanrl,jax",
                        help="references to measure where they can run: cleanrl (needs EnvPool), jax (needs JAX)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (20_480 if args.quick else 100_000)
    ref_seeds = 4 if args.quick and args.ref_seeds == 8 else args.ref_seeds
    batch_sizes = [int(s) for s in args.seeds.split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    wanted = {r.strip() for r in args.references.split(",") if r.strip()}
    global JAX_TIMEOUT_S
    JAX_TIMEOUT_S = args.jax_timeout or (120.0 if args.device == "cpu" else 900.0)

    info = machine()
    print(f"machine: {info['cpu']} | {info['cpu_count']} CPUs | torch {info['torch']} (1 thread per process) | "
          f"python {info['python']} | load avg {fmt(info['loadavg_1m_at_start'] or float('nan'), '.2f')}"
          + (f" | {info['gpu']}" if info.get("gpu") else ""))
    print(f"task: {ENV_ID}, PPO-clip, {steps} env steps per seed, 4 envs x 128 steps, "
          f"returns over {args.episodes} sampled episodes per agent\n", flush=True)
    started = time.perf_counter()
    skipped: dict[str, str] = {}
    no_cleanrl = cleanrl_available()
    if "cleanrl" in wanted and no_cleanrl:
        skipped["cleanrl-style reference"] = no_cleanrl
    if no_cleanrl and "envpool" in backends:
        backends.remove("envpool")
        skipped["harness on EnvPool"] = no_cleanrl
    if "jax" in wanted:
        from jax_reference import available as jax_available

        if why := jax_available():
            skipped["jax reference"] = why
    from evosearch.train.score import random_returns

    _setup()
    r_random = float(random_returns(ENV_ID, 200, 0, backend="envpool" if not no_cleanrl else "native").mean())

    rows: list[Row] = []
    reference = reference2 = None
    if "cleanrl" in wanted and not no_cleanrl:
        seeds = list(range(1, ref_seeds + 1))
        reference = make_row("cleanrl-style reference", [run_reference(steps, seeds, args.episodes)])
        print(f"  reference: {reference.agent_steps_per_s:,.0f} agent-steps/s, return {reference.return_mean:.1f}",
              flush=True)
        halves = [seeds[0::2], seeds[1::2]]
        reference2 = make_row("cleanrl-style reference x2",
                              in_parallel("reference", [{"steps": steps, "seeds": h, "episodes": args.episodes}
                                                        for h in halves]))
        print(f"  reference x2: {reference2.agent_steps_per_s:,.0f} agent-steps/s", flush=True)
        rows += [reference, reference2]
    jax_rows: dict[int, Row] = {}
    if "jax" in wanted and "jax reference" not in skipped:
        for size in batch_sizes:
            try:
                measured = run_jax(steps, size, args.episodes, args.device)
            except TimeoutError as err:
                skipped[f"jax reference x{size}"] = str(err)
                continue
            row = make_row(f"jax reference x{size}" + ("" if args.device == "cpu" else f" {args.device}"), [measured])
            print(f"  {row.config}: {row.agent_steps_per_s:,.0f} agent-steps/s, return {row.return_mean:.1f} "
                  f"({measured['env']}; compiling took {measured['compile_s']:.1f} s, not timed)",
                  flush=True)
            jax_rows[size] = row
            rows.append(row)
    harness_rows: list[Row] = []
    for backend in backends:
        for size in batch_sizes:
            row = make_row(f"harness {backend} x{size}" + ("" if args.device == "cpu" else f" {args.device}"),
                           [run_harness(steps, list(range(1, size + 1)), args.episodes, backend, device=args.device)])
            print(f"  {row.config}: {row.agent_steps_per_s:,.0f} agent-steps/s, return {row.return_mean:.1f}",
                  flush=True)
            if size in jax_rows:
                row.jax_ratio = row.agent_steps_per_s / jax_rows[size].agent_steps_per_s
            harness_rows.append(row)
    rows += harness_rows
    if harness_rows:
        best = max((r for r in harness_rows if r.seeds == max(batch_sizes)), key=lambda r: r.agent_steps_per_s)
        backend = best.config.split()[1]  # "harness <backend> x<seeds>[ <device>]"
        size = max(batch_sizes)
        jobs = [{"steps": steps, "seeds": list(range(1 + i * size, 1 + (i + 1) * size)), "episodes": args.episodes,
                 "backend": backend, "device": args.device} for i in range(2)]
        row = make_row(f"harness {backend} x{size}, 2 procs", in_parallel("harness", jobs))
        print(f"  {row.config}: {row.agent_steps_per_s:,.0f} agent-steps/s", flush=True)
        rows.append(row)

    for r in rows:
        if reference is not None and reference2 is not None:
            lo, hi = reference.return_ci95
            r.ratio = r.agent_steps_per_s / reference.agent_steps_per_s
            r.per_core_ratio = (r.agent_steps_per_s / r.processes) / (reference2.agent_steps_per_s / 2)
            r.normalised = (r.return_mean - r_random) / (reference.return_mean - r_random)
            if not r.config.startswith(("cleanrl", "jax")):
                r.inside_reference_ci = bool(lo <= r.return_mean <= hi)
    print()
    print_table(rows)
    for what, why in skipped.items():
        print(f"skipped: {what}: {why}")
    print(f"\nrandom play {r_random:.1f}. agent-steps/s = seeds x env steps / wall s of the slowest process; "
          f"x ref/core compares per-process rates with the reference's two-process run; x jax compares with the "
          f"JAX reference at the same seeds. Total {time.perf_counter() - started:.0f}s.")

    if args.json is not None:
        payload = {"machine": info, "env_id": ENV_ID, "steps_per_seed": steps, "episodes": args.episodes,
                   "device": args.device, "random_return": r_random, "skipped": skipped,
                   "rows": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(no_nan(payload), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
