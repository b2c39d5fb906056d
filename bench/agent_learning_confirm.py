"""Measure the SFT and GRPO adapters of a finished ``agent_learning.py --work DIR`` run again, on fresh prompts.

Why: a learning check on a handful of held-out prompts has a wide prompt-level CI. This
replicates the measurement on the states of ``--campaigns`` new campaigns (RNG seeds the first
run never used), with the same sampling settings as the run recorded in ``--result``, so the
second estimate is independent of the first and of any choice made after seeing it.

    python bench/agent_learning_confirm.py --work DIR [--campaigns 4] [--first-seed 20]
                                           [--result bench/results_agent_learning.json] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench", ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _common import no_nan  # noqa: E402
from agent_learning import campaign_archive, gain, print_gain, valid_rate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="the --work folder of agent_learning.py")
    parser.add_argument("--campaigns", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=20, help="RNG seed of the first new campaign")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results_agent_learning.json")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from evosearch.agent.dataset import build_datasets
    from evosearch.machine import machine_description

    torch.set_num_threads(2)
    first = json.loads(args.result.read_text())["args"]
    started = time.perf_counter()
    dbs = [campaign_archive(args.work / f"confirm{i}.db", f"confirm{i}", args.first_seed + i, first["evals"])
           for i in range(args.campaigns)]
    build_datasets(dbs, args.work / "confirm")
    prompts = [json.loads(line) for line in (args.work / "confirm" / "states.jsonl").read_text().splitlines()]
    model = args.work / "tiny-pretrained"
    result: dict = {"machine": machine_description(), "date": time.strftime("%Y-%m-%d"), "prompts": len(prompts),
                    "first_seed": args.first_seed, "campaigns": args.campaigns, "samples": first["samples"],
                    "temperature": first["temperature"]}
    for name in ("sft", "grpo"):
        result[name] = valid_rate(model, args.work / name, prompts, first["samples"], first["max_tokens"],
                                  first["temperature"])
        print(f"{name}: {result[name]['valid']}/{result[name]['n']} = {result[name]['rate']:.3f} "
              f"[{result[name]['ci'][0]:.3f}, {result[name]['ci'][1]:.3f}]", flush=True)
    result["gain"] = gain(result["sft"], result["grpo"], first["samples"])
    print_gain(result["gain"])
    result["wall_s"] = time.perf_counter() - started
    if args.json is not None:
        args.json.write_text(json.dumps(no_nan(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
