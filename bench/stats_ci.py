"""Time per bootstrap CI: the old Python loop over resamples against ``scipy.stats.bootstrap``.

Why: every evaluation computes a CI of the mean per task and a stratified CI of the IQM over
tasks x seeds, 2,000 resamples each, and a campaign runs thousands of evaluations (issue 16
measured ~0.35 s per CI with the loop). ``evosearch.stats`` now hands each task's column to
``scipy.stats.bootstrap`` as its own sample (resampled independently: rliable's stratified
bootstrap) with a vectorised statistic. This times, in the same run and on the same data:

* **loop (reference).** :func:`loop_ci`, the code ``evosearch.stats`` had before: one index
  array for all resamples, then the statistic called once per resample in a Python loop.
* **scipy.** ``evosearch.stats.stratified_bootstrap_ci`` and ``mean_ci`` as evaluations call them.

Shapes are what evaluations score: the IQM over a ``[seeds, tasks]`` matrix and the mean of one
task's seeds. Each timing is the median of ``--reps`` calls after one untimed call, in wall and
in CPU seconds of this process (on a shared machine the CPU figure moves less). The two CIs
are printed side by side: they differ by Monte-Carlo error only (``tests/test_stats.py`` checks
that on fixed data). Figures are printed, never asserted: they depend on the machine and its load.

    .venv/bin/python bench/stats_ci.py [--reps 20] [--resamples 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # works without PYTHONPATH and from any working directory
    sys.path.insert(0, str(ROOT))

from _common import median_seconds, no_nan  # noqa: E402

from evosearch import stats  # noqa: E402
from evosearch.machine import cpu_model  # noqa: E402

# (label, seeds, tasks): one task's seeds (the per-task CI) and suites of the sizes the repo ships.
SHAPES = (("mean, 10 seeds", 10, 1), ("IQM, 10 seeds x 3 tasks", 10, 3), ("IQM, 10 seeds x 6 tasks", 10, 6))


def loop_ci(scores: np.ndarray, statistic: Callable[[np.ndarray], float] = stats.iqm, reps: int = 2000,
            confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """The reference: ``evosearch.stats.stratified_bootstrap_ci`` as it was, a Python loop over resamples."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(scores[None, :, :].repeat(reps, 0), idx, axis=1)
    values = np.array([statistic(sample) for sample in resampled])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def measure(label: str, seeds: int, tasks: int, reps: int, resamples: int) -> dict:
    """Both CIs of one shape of normalised scores, and the median seconds each takes."""
    scores = np.random.default_rng(7).normal(0.6, 0.3, size=(seeds, tasks))
    statistic = stats.mean if tasks == 1 else stats.iqm
    if tasks == 1:
        new = lambda: stats.mean_ci(scores[:, 0], reps=resamples)  # noqa: E731
    else:
        new = lambda: stats.stratified_bootstrap_ci(scores, reps=resamples)  # noqa: E731
    loop_s, loop_cpu, loop = median_seconds(lambda: loop_ci(scores, statistic, reps=resamples), reps)
    new_s, new_cpu, scipy_ci = median_seconds(new, reps)
    return {"shape": label, "seeds": seeds, "tasks": tasks, "loop_ms": 1e3 * loop_s, "scipy_ms": 1e3 * new_s,
            "ratio": loop_s / new_s, "loop_cpu_ms": 1e3 * loop_cpu, "scipy_cpu_ms": 1e3 * new_cpu,
            "cpu_ratio": loop_cpu / new_cpu if new_cpu > 0 else float("nan"),
            "loop_ci": list(loop), "scipy_ci": list(scipy_ci)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="timed calls per variant (the median is shown)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per CI (evaluations: 2000)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = parser.parse_args()

    import scipy

    machine = f"{cpu_model()}, {os.cpu_count()} cores"
    print(f"machine: {machine} | python {sys.version.split()[0]} | numpy {np.__version__} | scipy {scipy.__version__}"
          f" | load avg {os.getloadavg()[0]:.2f} | {args.resamples} resamples per CI", flush=True)
    figures = [measure(label, seeds, tasks, args.reps, args.resamples) for label, seeds, tasks in SHAPES]
    print(f"\n{'wall (CPU) per CI':26} {'loop ms':>15} {'scipy ms':>15} {'ratio':>13}   loop CI            scipy CI")
    for f in figures:
        print(f"{f['shape']:26} {f['loop_ms']:7.1f} ({f['loop_cpu_ms']:5.1f}) {f['scipy_ms']:7.2f} "
              f"({f['scipy_cpu_ms']:5.2f}) {f['ratio']:5.0f}x ({f['cpu_ratio']:4.0f}x)   "
              f"[{f['loop_ci'][0]:.3f}, {f['loop_ci'][1]:.3f}]   [{f['scipy_ci'][0]:.3f}, {f['scipy_ci'][1]:.3f}]")
    if args.json:
        print(json.dumps(no_nan({"machine": machine, "date": time.strftime("%Y-%m-%d", time.gmtime()),
                                 "resamples": args.resamples, "figures": figures})))


if __name__ == "__main__":
    main()
