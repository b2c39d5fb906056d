"""What it costs to run a rule in its own process: the trainer asks it for losses and gradients.

Why: since issue 15 a training job never runs the rule's code itself. The rule lives in a
companion process (``evosearch/sandbox/companion.py``) and the trainer sends it each minibatch's
fields and applies the gradients it sends back (``evosearch/train/rule_process.py``). That is
one round trip per minibatch: 16 per iteration with the harness's defaults, about 6,000 per
quick-suite evaluation. This measures the price, with the same code run in-process as the
reference, in the same run:

1. **Per minibatch.** The rule's loss and its gradient to a network, at quick-suite shape
   (6 seeds x 128 samples): ``rule.losses(fields).sum().backward()`` through a small graph,
   with the rule loaded here (reference) and in a companion under its seccomp filter.
2. **Per training.** ``harness.train`` on CartPole-v1 (quick's budget, 6 seeds) with each
   rule of ``programs/rules``, in-process then in a companion; the weights must be identical
   (the script says so if they are not: the chain rule across the process boundary is the
   same arithmetic autograd does in one process).

The process's CPU time includes the companion's only once it is reaped, so CPU figures are
this process's own plus the companion's (from its ``/proc`` stat before it ends). Figures are
printed, never asserted.

    .venv/bin/python bench/rule_process.py [--reps 300] [--steps 50000] [--rules a2c,ppo_clip] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import no_nan  # noqa: E402

torch.set_num_threads(1)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (the companion, before it is reaped)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _remote(source: str):
    from evosearch.sandbox import companion
    from evosearch.sandbox.seccomp_filter import available
    from evosearch.train import rule_process

    companion.start(rule_process.serve, seccomp=available())
    sock, pid = companion.channel()
    return rule_process.RemoteRule(sock, pid, source)


def per_minibatch(source: str, reps: int) -> dict:
    from evosearch.train.rule import SAMPLE_FIELDS, load_rule

    seeds, samples = 6, 128
    g = torch.Generator().manual_seed(0)
    base = {k: torch.randn(seeds, samples, generator=g) for k in SAMPLE_FIELDS}
    base["progress"] = torch.rand(seeds, generator=g)
    weight = torch.randn(seeds, samples, requires_grad=True)

    def step(rule) -> None:
        fields = dict(base)
        for name in ("logp", "value", "entropy"):
            fields[name] = base[name] * weight  # a graph behind the fields, as the networks give
        rule.losses(fields).sum().backward()

    out = {}
    remote = _remote(source)
    for name, rule in (("in_process", load_rule(source)), ("companion", remote)):
        for _ in range(30):
            step(rule)
        companion_before = _cpu_s(remote.pid)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(reps):
            step(rule)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if name == "companion":
            cpu += _cpu_s(remote.pid) - companion_before
        out[name] = {"wall_ms": wall / reps * 1e3, "cpu_ms": cpu / reps * 1e3}
    remote.close()
    return out


def per_training(source: str, steps: int) -> dict:
    from evosearch.train import harness
    from evosearch.train.rule import load_rule

    cfg = harness.TrainConfig("CartPole-v1", steps)
    seeds = list(range(6))
    harness.train(load_rule(source), harness.TrainConfig("CartPole-v1", 2048), seeds)  # warm the env and torch
    out, weights = {}, {}
    for name in ("in_process", "companion"):
        rule = load_rule(source) if name == "in_process" else _remote(source)
        companion_before = _cpu_s(rule.pid) if name == "companion" else 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        result = harness.train(rule, cfg, seeds)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if name == "companion":
            cpu += _cpu_s(rule.pid) - companion_before
            rule.close()
        out[name] = {"wall_s": wall, "cpu_s": cpu}
        weights[name] = result.weights
    out["identical_weights"] = all(np.array_equal(weights["in_process"][k], weights["companion"][k])
                                   for k in weights["in_process"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300, help="minibatches timed per variant")
    parser.add_argument("--steps", type=int, default=50_000, help="environment steps per seed (quick: 50k)")
    parser.add_argument("--rules", default="a2c,ppo_clip", help="programs/rules/NAME.py, comma-separated")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = parser.parse_args()

    from evosearch.machine import machine_description

    print(f"machine: {machine_description()} | python {sys.version.split()[0]} | torch {torch.__version__} | "
          f"load avg {os.getloadavg()[0]:.2f}", flush=True)
    figures: dict = {}
    for name in args.rules.split(","):
        source = (ROOT / "programs" / "rules" / f"{name}.py").read_text()
        mb = per_minibatch(source, args.reps)
        tr = per_training(source, args.steps)
        figures[name] = {"minibatch": mb, "training": tr}
        ratio = lambda key, a, b: b[key] / a[key]  # noqa: E731
        print(f"\n{name}: one minibatch (6 seeds x 128 samples), loss and gradient")
        for variant, f in mb.items():
            print(f"  {variant:10}  {f['wall_ms']:6.3f} ms wall  {f['cpu_ms']:6.3f} ms CPU")
        print(f"  companion / in-process: {ratio('wall_ms', mb['in_process'], mb['companion']):.2f}x wall, "
              f"{ratio('cpu_ms', mb['in_process'], mb['companion']):.2f}x CPU")
        print(f"{name}: harness.train on CartPole-v1, {args.steps:,} steps x 6 seeds")
        for variant in ("in_process", "companion"):
            print(f"  {variant:10}  {tr[variant]['wall_s']:6.2f} s wall  {tr[variant]['cpu_s']:6.2f} s CPU")
        print(f"  companion / in-process: {ratio('wall_s', tr['in_process'], tr['companion']):.2f}x wall, "
              f"{ratio('cpu_s', tr['in_process'], tr['companion']):.2f}x CPU; weights identical: "
              f"{tr['identical_weights']}")
    if args.json:
        print(json.dumps(no_nan({"machine": machine_description(), "figures": figures,
                                 "median_training_cpu_ratio": statistics.median(
                                     f["training"]["companion"]["cpu_s"] / f["training"]["in_process"]["cpu_s"]
                                     for f in figures.values())})))


if __name__ == "__main__":
    main()
