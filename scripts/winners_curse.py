"""How much a campaign's best scores owe to luck: re-measure its top programs on fresh seeds.

A search keeps the highest of many noisy scores, so the scores it reports for its winners are
biased upward (the winner's curse). This takes the ``--top`` best programs of a finished
campaign, evaluates each again with the campaign's own suite on seeds the search never used
(``RuleEvaluator.confirm``: twice the suite's seeds, from ``--first-seed``, plus the held-out
tasks), and prints the score the campaign ranked them by, the fresh score and their
difference; ``--json`` writes them too.

``--rank search`` (default) takes the best by search score: the curse of a campaign that selects
on it. ``--rank confirmed`` takes the best by the campaign's own confirmed score (``confirm:`` in
its config) and measures them on yet other seeds (``--first-seed 2000``, past the campaign's
confirmation seeds): the curse left once selection uses confirmed scores.

    .venv/bin/python scripts/winners_curse.py archive/quickstart.db [--top 3] [--rank search|confirmed]
                                              [--first-seed 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
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
    parser.add_argument("--rank", choices=("search", "confirmed"), default="search",
                        help="which of the campaign's scores picks the top programs")
    parser.add_argument("--first-seed", type=int, default=None,
                        help="first fresh seed (default 1000 for --rank search, 2000 for --rank confirmed)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    first_seed = args.first_seed if args.first_seed is not None else (1000 if args.rank == "search" else 2000)

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
        ok = archive.list_programs(int(row["id"]), outcome="ok", order="score")
        if args.rank == "confirmed":
            ok = sorted((r for r in ok if r["confirmed"] is not None), key=lambda r: -float(r["confirmed"]))
            if not ok:
                print(f"campaign {row['name']!r} confirmed no program: --rank confirmed needs confirm: in its config",
                      file=sys.stderr)
                return 2
        programs = [(int(r["id"]), float(r["score"]), [r["ci_low"], r["ci_high"]],
                     None if r["confirmed"] is None else float(r["confirmed"]),
                     archive.program(int(r["id"]))["source"]) for r in ok[:args.top]]
    finally:
        archive.close()
    evaluator = default_evaluator(config)
    evaluator.config = replace(evaluator.config, confirm_seed_offset=first_seed)
    print(f"machine: {machine_description()}; campaign {row['name']!r} on suite {config.evaluation.suite}; "
          f"top {len(programs)} by {args.rank} score; fresh seeds from {first_seed}\n", flush=True)
    rows = []
    for program_id, search, search_ci, campaign_confirmed, source in programs:
        program = Program(source, kind=config.kind, name=f"program_{program_id}.py")
        start = time.perf_counter()
        result = evaluator.evaluate(program)
        evaluator.confirm(program, result)
        confirmed = result.confirmed
        if confirmed.get("outcome") != "ok":
            print(f"#{program_id}: re-evaluation ended {result.outcome} {confirmed.get('outcome', '')}", flush=True)
            continue
        rows.append({"program": program_id, "search": search, "search_ci": search_ci, "again_same_seeds": result.score,
                     "campaign_confirmed": campaign_confirmed,
                     "confirmed": confirmed["score"], "confirmed_ci": confirmed["ci"], "seeds": confirmed["seeds"],
                     "held_out": {k: v["normalized_mean"] for k, v in confirmed["held_out"].items()},
                     "wall_s": time.perf_counter() - start})
        r = rows[-1]
        ranked = search if args.rank == "search" else campaign_confirmed
        print(f"#{program_id}: search {search:.3f}"
              + (f"; campaign's confirmed {campaign_confirmed:.3f}" if campaign_confirmed is not None else "")
              + f"; same seeds again {r['again_same_seeds']:.3f}; fresh {r['seeds']} seeds {r['confirmed']:.3f} "
              f"[{r['confirmed_ci'][0]:.3f}, {r['confirmed_ci'][1]:.3f}]; {args.rank} minus fresh "
              f"{ranked - r['confirmed']:+.3f}", flush=True)
    if rows:
        key = "search" if args.rank == "search" else "campaign_confirmed"
        gap = sum(r[key] - r["confirmed"] for r in rows) / len(rows)
        print(f"\nmean {args.rank} score minus fresh score over the top {len(rows)}: {gap:+.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine_description(), "date": time.strftime("%Y-%m-%d"),
                                         "campaign": row["name"], "suite": config.evaluation.suite,
                                         "rank": args.rank, "first_seed": first_seed,
                                         "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
