"""How much a campaign's best scores owe to luck: re-measure its top programs on fresh seeds.

A search keeps the highest of many noisy scores, so the scores it reports for its winners are
biased upward (the winner's curse). This takes the ``--top`` best programs of a finished
campaign, evaluates each again with the campaign's own suite on seeds the search never used
(``RuleEvaluator.confirm``: twice the suite's seeds, from seed 1000, plus the held-out tasks),
and prints search score, confirmed score and their difference; ``--json`` writes them too.
Programs the campaign already confirmed are measured again all the same (a fresh draw).

    .venv/bin/python scripts/winners_curse.py archive/quickstart.db [--top 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evosearch.archive.store import Archive  # noqa: E402
from evosearch.config import config_from_dict  # noqa: E402
from evosearch.machine import machine_description  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--campaign", default=None, help="campaign name (default: the only one)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from evosearch.campaign import default_evaluator
    from evosearch.program import Program

    archive = Archive(args.db, readonly=True)
    try:
        campaigns = archive.campaigns()
        row = next((c for c in campaigns if args.campaign in (None, c["name"])), None)
        if row is None:
            print(f"no campaign {args.campaign!r} in {args.db}", file=sys.stderr)
            return 2
        config = config_from_dict(json.loads(row["config"]))
        best = archive.list_programs(int(row["id"]), outcome="ok", order="score", limit=args.top)
        programs = [(int(r["id"]), float(r["score"]), [r["ci_low"], r["ci_high"]],
                     archive.program(int(r["id"]))["source"]) for r in best]
    finally:
        archive.close()
    evaluator = default_evaluator(config)
    print(f"machine: {machine_description()}; campaign {row['name']!r} on suite {config.evaluation.suite}; "
          f"top {len(programs)} by search score\n", flush=True)
    rows = []
    for program_id, search, search_ci, source in programs:
        program = Program(source, kind=config.kind, name=f"program_{program_id}.py")
        start = time.perf_counter()
        result = evaluator.evaluate(program)
        evaluator.confirm(program, result)
        confirmed = result.confirmed
        if confirmed.get("outcome") != "ok":
            print(f"#{program_id}: re-evaluation ended {result.outcome} {confirmed.get('outcome', '')}", flush=True)
            continue
        rows.append({"program": program_id, "search": search, "search_ci": search_ci, "again_same_seeds": result.score,
                     "confirmed": confirmed["score"], "confirmed_ci": confirmed["ci"], "seeds": confirmed["seeds"],
                     "held_out": {k: v["normalized_mean"] for k, v in confirmed["held_out"].items()},
                     "wall_s": time.perf_counter() - start})
        r = rows[-1]
        print(f"#{program_id}: search {search:.3f}; same seeds again {r['again_same_seeds']:.3f}; fresh "
              f"{r['seeds']} seeds {r['confirmed']:.3f} [{r['confirmed_ci'][0]:.3f}, {r['confirmed_ci'][1]:.3f}]; "
              f"search minus fresh {search - r['confirmed']:+.3f}", flush=True)
    if rows:
        gap = sum(r["search"] - r["confirmed"] for r in rows) / len(rows)
        print(f"\nmean search score minus confirmed score over the top {len(rows)}: {gap:+.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine_description(), "date": time.strftime("%Y-%m-%d"),
                                         "campaign": row["name"], "suite": config.evaluation.suite,
                                         "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
