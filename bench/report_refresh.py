"""What a watching web page downloads per archive change: the whole data (before) against a delta (now).

Why: ``evosearch serve`` pages poll a campaign while it runs. They used to fetch ``data.json``,
the whole archive (every program's source, result and per-seed curves), on every change, so a
page watching a long campaign downloaded and parsed megabytes every few seconds. Now the page
sends what it holds (``data.json?since=...``) and gets only what it lacks.

This builds an archive of ``--programs`` evaluated programs through the real ``Archive`` API
(sources the size of the shipped rules, 3 tasks x 6 seeds of 20-point learning curves each),
then records one more program and measures, in the same run:

* **whole (reference).** ``build_data`` as plain ``data.json`` serves it: bytes and build time.
* **delta.** ``build_data`` with the ``Held`` summary of the page's data before the change.

Times are the median of ``--reps`` builds; figures are printed, never asserted.

    .venv/bin/python bench/report_refresh.py [--programs 2000] [--reps 5] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # works without PYTHONPATH and from any working directory
    sys.path.insert(0, str(ROOT))

from _common import median_seconds, no_nan  # noqa: E402

from evosearch.archive.store import Archive, CellEntry  # noqa: E402
from evosearch.evaluate.result import EvalResult, TaskResult  # noqa: E402
from evosearch.machine import cpu_model  # noqa: E402
from evosearch.report.data import Held, build_data, to_json  # noqa: E402

TASKS, SEEDS, CHECKPOINTS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0"), 6, 20
BASE_SOURCE = (ROOT / "programs" / "rules" / "ppo_clip.py").read_text()


def result(rng: np.random.Generator) -> EvalResult:
    """A full-stage result with per-seed returns and curves, shaped like the quick suite's."""
    tasks = {}
    for env_id in TASKS:
        returns = rng.normal(100, 30, SEEDS).round(2).tolist()
        normalized = rng.normal(0.6, 0.3, SEEDS).round(4).tolist()
        tasks[env_id] = TaskResult(
            env_id=env_id, returns=returns, normalized=normalized, mean_return=float(np.mean(returns)),
            normalized_mean=float(np.mean(normalized)), ci=[0.4, 0.8],
            curve_steps=[2560 * (i + 1) for i in range(CHECKPOINTS)],
            curves=rng.normal(80, 40, (SEEDS, CHECKPOINTS)).round(2).tolist(),
            auc_per_seed=rng.uniform(0, 1, SEEDS).tolist(), auc=0.5, train_wall_s=4.0)
    score = float(rng.normal(0.6, 0.3))
    return EvalResult(outcome="ok", stage="full", score=score, ci=[score - 0.2, score + 0.2], wall_s=20.0,
                      suite="quick", iqm=score, auc=0.5, tasks=tasks, cpu_s=19.0, peak_rss_mb=400.0)


def add_evaluated(archive: Archive, campaign_id: int, n: int, rng: np.random.Generator) -> None:
    for _ in range(n):
        source = f"{BASE_SOURCE}\n# variant {rng.integers(1 << 62)}\n"
        pid = archive.add_pending(campaign_id, {
            "kind": "rule", "source": source, "sha": hashlib.sha256(source.encode()).hexdigest(),
            "operator": "ast.constant", "island": int(rng.integers(2)), "note": "a constant moved"})
        cell = int(rng.integers(100))
        archive.record(campaign_id, pid, result(rng), descriptors={"code_size": 0.5, "learning_speed": 0.5},
                       cells=[CellEntry(island=0, cell=cell, coords=[cell // 10, cell % 10])], state={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000, help="evaluated programs in the archive")
    parser.add_argument("--reps", type=int, default=5, help="timed builds per variant (the median is shown)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = parser.parse_args()

    machine = f"{cpu_model()}, {os.cpu_count()} cores"
    print(f"machine: {machine} | load avg {os.getloadavg()[0]:.2f} | {args.programs} programs", flush=True)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive(Path(tmp) / "bench.db")
        axes = [{"name": name, "min": 0.0, "max": 1.0, "bins": 10} for name in ("code_size", "learning_speed")]
        config = {"archive": {"descriptors": axes, "islands": 2}}
        cid = archive.create_campaign("bench", "rule", config, {})
        add_evaluated(archive, cid, args.programs, rng)
        held = Held.of(build_data(archive, live=True))  # what a page opened now holds
        add_evaluated(archive, cid, 1, rng)  # the campaign records one more result
        whole_s, _, whole = median_seconds(lambda: build_data(archive, live=True), args.reps)
        delta_s, _, delta = median_seconds(lambda: build_data(archive, live=True, held=held), args.reps)
        archive.close()
    whole_bytes, delta_bytes = len(to_json(whole).encode()), len(to_json(delta).encode())
    figures = {"programs": args.programs, "whole_bytes": whole_bytes, "delta_bytes": delta_bytes,
               "bytes_ratio": whole_bytes / delta_bytes, "whole_ms": 1e3 * whole_s, "delta_ms": 1e3 * delta_s,
               "time_ratio": whole_s / delta_s}
    print(f"\n{'per change':12} {'bytes':>12} {'build ms':>10}")
    print(f"{'whole':12} {whole_bytes:12,} {1e3 * whole_s:10.1f}")
    print(f"{'delta':12} {delta_bytes:12,} {1e3 * delta_s:10.1f}")
    print(f"{'ratio':12} {whole_bytes / delta_bytes:11.0f}x {whole_s / delta_s:9.0f}x")
    if args.json:
        print(json.dumps(no_nan({"machine": machine, "date": time.strftime("%Y-%m-%d", time.gmtime()), **figures})))


if __name__ == "__main__":
    main()
