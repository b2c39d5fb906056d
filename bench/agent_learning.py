"""Does GRPO teach the tiny proposer anything? Its rate of well-formed, applicable edits before and after.

Why: at tiny scale a learning check must measure something the tiny model can learn. Here it
is the edit format itself: the share of completions that parse as SEARCH/REPLACE blocks, apply
to their parent and pass the static check (a valid child), measured on held-out prompts.

1. Real campaigns on the tiny suite (different RNG seeds): ``--campaigns`` of them give the
   training data (``sft.jsonl``, ``states.jsonl``), the second's states are the held-out prompts.
2. The tiny random model (``evosearch.agent.tiny``) gets an SFT adapter (``--sft-steps``).
3. Sampled completions of the SFT model on the held-out prompts: the rate of valid children,
   with a Wilson 95% CI.
4. GRPO from the SFT adapter (``--grpo-steps``) on the training states, rewarded by the real
   sandboxed evaluator (``stages: smoke``: a valid new behaviour 0.5, a known one 0.1, anything
   else 0), then the same measurement.

    python bench/agent_learning.py [--sft-steps 150] [--grpo-steps 30] [--samples 16] [--max-tokens 320]
                                   [--campaigns 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench", ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _common import no_nan  # noqa: E402

TINY_SUITE = str(ROOT / "tests" / "data" / "tiny.yaml")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion: sound at rates near 0, where the normal one is not."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def campaign_archive(path: Path, name: str, rng_seed: int, evals: int) -> Path:
    from conftest import campaign_config

    from evosearch.campaign import Campaign

    campaign = Campaign(campaign_config(name, rng_seed=rng_seed, budget={"max_evals": evals}), db_path=path)
    campaign.run()
    campaign.close()
    return path


def valid_rate(model_dir: Path, adapter: Path, states: list[dict], samples: int, max_tokens: int,
               seed: int = 0) -> dict:
    """Sample ``samples`` completions per held-out prompt; count those that give a valid child."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evosearch.propose.base import ProposalError, checked_child
    from evosearch.propose.llm_edits import EditError, apply_response

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True),
                                      str(adapter))
    model.eval()
    torch.manual_seed(seed)
    counts = {"valid": 0, "applies_but_rejected": 0, "does_not_apply": 0}
    for state in states:
        ids = tokenizer.apply_chat_template(state["prompt"], add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, do_sample=True, temperature=1.0, max_new_tokens=max_tokens,
                                 num_return_sequences=samples, pad_token_id=tokenizer.pad_token_id)
        for sequence in out[:, ids["input_ids"].shape[1]:]:
            text = tokenizer.decode(sequence, skip_special_tokens=True)
            try:
                child, _ = apply_response(state["parent_source"], text, state.get("kind") or "rule")
                checked_child(state["parent_source"], child)
                counts["valid"] += 1
            except EditError:
                counts["does_not_apply"] += 1
            except ProposalError:
                counts["applies_but_rejected"] += 1
    n = sum(counts.values())
    return {"n": n, **counts, "rate": counts["valid"] / n if n else 0.0, "ci": wilson(counts["valid"], n)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--grpo-steps", type=int, default=40)
    parser.add_argument("--samples", type=int, default=16, help="completions per held-out prompt")
    parser.add_argument("--evals", type=int, default=40, help="evaluations per campaign")
    parser.add_argument("--max-tokens", type=int, default=320, help="an edit is ~100-300 tokens of the tiny tokenizer")
    parser.add_argument("--campaigns", type=int, default=3, help="training campaigns (more SFT rows)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from evosearch.agent.dataset import build_datasets
    from evosearch.agent.reward import RewardConfig, RewardModule
    from evosearch.agent.tiny import build_tiny_model
    from evosearch.agent.train import GrpoSettings, LoraSettings, SftSettings, train_grpo, train_sft
    from evosearch.machine import machine_description

    torch.set_num_threads(2)
    started = time.perf_counter()
    result: dict = {"machine": machine_description(), "date": time.strftime("%Y-%m-%d"), "args": vars(args) | {
        "json": str(args.json) if args.json else None}}
    with tempfile.TemporaryDirectory(prefix="evosearch-agent-learning-") as scratch:
        work = Path(scratch)
        train_dbs = [campaign_archive(work / f"train{i}.db", f"train{i}", 10 + i, args.evals)
                     for i in range(args.campaigns)]
        held_db = campaign_archive(work / "held.db", "held", 2, args.evals)
        # Every valid edit of the training campaign, better or not: what is learnt here is the format.
        train_summary = build_datasets(train_dbs, work / "train", min_gain=-math.inf)
        build_datasets([held_db], work / "held")
        held = [json.loads(line) for line in (work / "held" / "states.jsonl").read_text().splitlines()]
        result["data"] = {"sft_rows": train_summary.sft_rows, "train_states": train_summary.states,
                          "held_out_prompts": len(held)}
        print(f"data: {train_summary.sft_rows} SFT rows, {train_summary.states} training states, "
              f"{len(held)} held-out prompts", flush=True)
        tiny = build_tiny_model(work / "tiny-llm")
        # A random 2-layer model has nothing to adapt: the adapter wraps every linear layer and the
        # output layer trains in full, or the format cannot be learnt at all.
        lora = LoraSettings(rank=16, alpha=32, dropout=0.0, target_modules=("all-linear",),
                            modules_to_save=("lm_head",))
        sft = train_sft(SftSettings(base_model=str(tiny), dataset=str(work / "train"), output=str(work / "sft"),
                                    lora=lora, steps=args.sft_steps, batch=2, learning_rate=3e-3))
        result["sft"] = {"steps": sft.steps, "wall_s": sft.wall_s,
                         "loss": [m["loss"] for m in sft.metrics if "loss" in m]}
        before = valid_rate(tiny, work / "sft", held, args.samples, args.max_tokens)
        result["held_out_sft"] = before
        print(f"SFT ({sft.steps} steps, {sft.wall_s:.0f} s): valid edits {before['valid']}/{before['n']} = "
              f"{before['rate']:.3f} [{before['ci'][0]:.3f}, {before['ci'][1]:.3f}]", flush=True)
        reward = RewardModule(RewardConfig(suite=TINY_SUITE, stages="smoke"))
        grpo = train_grpo(GrpoSettings(base_model=str(tiny), dataset=str(work / "train"), output=str(work / "grpo"),
                                       adapter=str(work / "sft"), lora=lora, steps=args.grpo_steps, batch=8,
                                       generations=8, learning_rate=5e-4, max_completion_length=args.max_tokens),
                           reward=reward)
        result["grpo"] = {"steps": grpo.steps, "wall_s": grpo.wall_s, "reward_stats": reward.stats(),
                          "curve": [{k: m[k] for k in ("step", "reward", "reward_std", "kl") if k in m}
                                    for m in grpo.metrics if "reward" in m]}
        after = valid_rate(tiny, work / "grpo", held, args.samples, args.max_tokens)
        result["held_out_grpo"] = after
        print(f"GRPO ({grpo.steps} steps, {grpo.wall_s:.0f} s): valid edits {after['valid']}/{after['n']} = "
              f"{after['rate']:.3f} [{after['ci'][0]:.3f}, {after['ci'][1]:.3f}]", flush=True)
    result["wall_s"] = time.perf_counter() - started
    if args.json is not None:
        args.json.write_text(json.dumps(no_nan(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
