"""Does GRPO teach the tiny proposer anything? Its rate of well-formed, applicable edits before and after.

Why: at tiny scale a learning check must measure something the tiny model can learn. Here it
is the edit format itself: the share of sampled completions that parse as SEARCH/REPLACE
blocks, apply to their parent and pass the static check (a valid child), on held-out prompts.

1. Real campaigns on the tiny suite (different RNG seeds): ``--campaigns`` of them give the
   training data, ``--held-out`` more give the held-out prompts (their ``states.jsonl``).
2. Training data: every edit of the training campaigns, better or not (``min_gain=-inf``),
   plus ``--operator-edits`` AST-operator edits of each training state's parent (the format
   warm-up of ``agent dataset --operator-edits``).
3. The tiny model (``evosearch.agent.tiny``: width ``--width``, sliding-window attention over
   ``--window`` tokens) is first pretrained on the training edits and parents as plain text
   (``--pretrain-steps``: the stand-in for a code model's pretraining), then gets an SFT
   adapter (``--sft-steps``) on the prompts.
4. ``--samples`` completions per held-out prompt from the SFT model: the rate of valid
   children, with a Wilson 95% CI.
5. GRPO from the SFT adapter (``--grpo-steps``) on the training states, rewarded by the real
   sandboxed evaluator (``stages: smoke``: a valid new behaviour 0.5, a known one 0.1,
   anything else 0), then the same measurement, with the same sampling seed.
6. The gain: GRPO's rate minus SFT's, with a 95% CI from a bootstrap over held-out prompts
   (completions of one prompt are not independent of each other).

    python bench/agent_learning.py [--pretrain-steps 800] [--sft-steps 150] [--grpo-steps 60] [--samples 16]
                                   [--generations 16] [--temperature 0.7] [--max-tokens 256] [--campaigns 3]
                                   [--held-out 2] [--operator-edits 8] [--width 128] [--window 256]
                                   [--work DIR] [--json PATH]
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
    """A finished tiny campaign in ``path``; one already there (``--work``) is reused as it is."""
    from conftest import campaign_config

    from evosearch.campaign import Campaign

    if path.is_file():
        return path

    campaign = Campaign(campaign_config(name, rng_seed=rng_seed, budget={"max_evals": evals}), db_path=path)
    campaign.run()
    campaign.close()
    return path


def valid_rate(model_dir: Path, adapter: Path, states: list[dict], samples: int, max_tokens: int,
               temperature: float = 1.0, seed: int = 0) -> dict:
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
    per_prompt = []
    for state in states:
        ids = tokenizer.apply_chat_template(state["prompt"], add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, do_sample=True, temperature=temperature, max_new_tokens=max_tokens,
                                 num_return_sequences=samples, pad_token_id=tokenizer.pad_token_id)
        valid = 0
        for sequence in out[:, ids["input_ids"].shape[1]:]:
            text = tokenizer.decode(sequence, skip_special_tokens=True)
            try:
                child, _ = apply_response(state["parent_source"], text, state.get("kind") or "rule")
                checked_child(state["parent_source"], child)
                valid += 1
            except EditError:
                counts["does_not_apply"] += 1
            except ProposalError:
                counts["applies_but_rejected"] += 1
        counts["valid"] += valid
        per_prompt.append(valid)
    n = sum(counts.values())
    return {"n": n, **counts, "rate": counts["valid"] / n if n else 0.0, "ci": wilson(counts["valid"], n),
            "valid_per_prompt": per_prompt}


def newcombe_gain(before: dict, after: dict) -> tuple[float, float]:
    """95% CI of ``after`` rate minus ``before`` rate from their Wilson intervals (Newcombe's method 10).

    It treats completions as independent, which they are not within a prompt: read it beside
    :func:`bootstrap_gain`, which resamples prompts and is the stricter of the two.
    """
    p1, p2 = before["rate"], after["rate"]
    (l1, u1), (l2, u2) = before["ci"], after["ci"]
    diff = p2 - p1
    return (diff - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), diff + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def bootstrap_gain(before: list[int], after: list[int], samples: int, reps: int = 10_000,
                   seed: int = 0) -> tuple[float, float]:
    """95% CI of the rate gain, resampling held-out prompts (paired: the same prompts before and after)."""
    import random

    rng = random.Random(seed)
    n = len(before)
    gains = []
    for _ in range(reps):
        picks = [rng.randrange(n) for _ in range(n)]
        gains.append(sum(after[i] - before[i] for i in picks) / (n * samples))
    gains.sort()
    return gains[int(0.025 * reps)], gains[int(0.975 * reps) - 1]


def gain(before: dict, after: dict, samples: int) -> dict:
    """The rate gain from ``before`` to ``after`` (two :func:`valid_rate` results) with both its CIs."""
    low, high = bootstrap_gain(before["valid_per_prompt"], after["valid_per_prompt"], samples)
    return {"rate": after["rate"] - before["rate"], "ci": [low, high],
            "ci_completions": list(newcombe_gain(before, after))}


def print_gain(measured: dict) -> None:
    (low, high), (c_low, c_high) = measured["ci"], measured["ci_completions"]
    print(f"gain: {measured['rate']:+.3f} [{low:+.3f}, {high:+.3f}] (bootstrap over prompts), "
          f"[{c_low:+.3f}, {c_high:+.3f}] (completions as independent)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--grpo-steps", type=int, default=60)
    parser.add_argument("--samples", type=int, default=16, help="completions per held-out prompt")
    parser.add_argument("--evals", type=int, default=40, help="evaluations per campaign")
    parser.add_argument("--max-tokens", type=int, default=256, help="an edit is ~40-150 tokens of the tiny tokenizer")
    parser.add_argument("--campaigns", type=int, default=3, help="training campaigns")
    parser.add_argument("--held-out", type=int, default=2, help="campaigns whose states are the held-out prompts")
    parser.add_argument("--operator-edits", type=int, default=8, help="format warm-up rows per training state")
    parser.add_argument("--width", type=int, default=128, help="the tiny model's hidden size")
    parser.add_argument("--window", type=int, default=256, help="its sliding attention window, in tokens")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the campaigns here and reuse them next time (default: a temporary folder)")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling, in GRPO and in the measurement")
    parser.add_argument("--generations", type=int, default=16, help="GRPO's group: completions per prompt")
    parser.add_argument("--grpo-lr", type=float, default=5e-4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from evosearch.agent.dataset import build_datasets
    from evosearch.agent.reward import RewardConfig, RewardModule
    from evosearch.agent.tiny import build_tiny_model, pretrain_tiny
    from evosearch.agent.train import GrpoSettings, LoraSettings, SftSettings, train_grpo, train_sft
    from evosearch.machine import machine_description

    torch.set_num_threads(2)
    started = time.perf_counter()
    result: dict = {"machine": machine_description(), "date": time.strftime("%Y-%m-%d"), "args": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="evosearch-agent-learning-") as scratch:
        work = Path(scratch)
        if args.work is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            work = args.work
        train_dbs = [campaign_archive(work / f"train{i}.db", f"train{i}", 10 + i, args.evals)
                     for i in range(args.campaigns)]
        held_dbs = [campaign_archive(work / f"held{i}.db", f"held{i}", 2 + i, args.evals)
                    for i in range(args.held_out)]
        # Every valid edit of the training campaigns, better or not: what is learnt here is the format.
        train_summary = build_datasets(train_dbs, work / "train", min_gain=-math.inf,
                                       operator_edits=args.operator_edits)
        build_datasets(held_dbs, work / "held")
        held = [json.loads(line) for line in (work / "held" / "states.jsonl").read_text().splitlines()]
        result["data"] = {"sft_rows": train_summary.sft_rows, "warmup_rows": train_summary.warmup_rows,
                          "train_states": train_summary.states, "held_out_prompts": len(held)}
        print(f"data: {train_summary.sft_rows} campaign edits + {train_summary.warmup_rows} operator edits, "
              f"{train_summary.states} training states, {len(held)} held-out prompts", flush=True)
        texts = [json.loads(line)["completion"][0]["content"]
                 for name in ("sft.jsonl", "warmup.jsonl")
                 for line in (work / "train" / name).read_text().splitlines()]
        states = (work / "train" / "states.jsonl").read_text().splitlines()
        texts += [json.loads(line)["parent_source"] for line in states]
        random_model = build_tiny_model(work / "tiny-random", hidden_size=args.width, window=args.window)
        pretrain_started = time.perf_counter()
        tiny = pretrain_tiny(random_model, texts, work / "tiny-pretrained", steps=args.pretrain_steps)
        result["pretrain"] = json.loads((tiny / "pretrain.json").read_text()) | {
            "wall_s": time.perf_counter() - pretrain_started}
        print(f"pretrained on {len(texts)} texts: loss {result['pretrain']['loss_first']:.2f} -> "
              f"{result['pretrain']['loss_last']:.2f}", flush=True)
        # The adapter wraps every linear layer and the output layer trains in full: a tiny model
        # has little to adapt.
        lora = LoraSettings(rank=16, alpha=32, dropout=0.0, target_modules=("all-linear",),
                            modules_to_save=("lm_head",))
        sft = train_sft(SftSettings(base_model=str(tiny), dataset=str(work / "train"), output=str(work / "sft"),
                                    lora=lora, warmup=True, steps=args.sft_steps, batch=4, learning_rate=1e-3))
        result["sft"] = {"steps": sft.steps, "wall_s": sft.wall_s,
                         "loss": [m["loss"] for m in sft.metrics if "loss" in m]}
        before = valid_rate(tiny, work / "sft", held, args.samples, args.max_tokens, args.temperature)
        result["held_out_sft"] = before
        print(f"SFT ({sft.steps} steps, {sft.wall_s:.0f} s): valid edits {before['valid']}/{before['n']} = "
              f"{before['rate']:.3f} [{before['ci'][0]:.3f}, {before['ci'][1]:.3f}]", flush=True)
        reward = RewardModule(RewardConfig(suite=TINY_SUITE, stages="smoke"))
        grpo = train_grpo(GrpoSettings(base_model=str(tiny), dataset=str(work / "train"), output=str(work / "grpo"),
                                       adapter=str(work / "sft"), lora=lora, steps=args.grpo_steps,
                                       batch=args.generations, generations=args.generations,
                                       learning_rate=args.grpo_lr, temperature=args.temperature,
                                       max_completion_length=args.max_tokens),
                          reward=reward)
        result["grpo"] = {"steps": grpo.steps, "wall_s": grpo.wall_s, "reward_stats": reward.stats(),
                          "curve": [{k: m[k] for k in ("step", "reward", "reward_std", "kl") if k in m}
                                    for m in grpo.metrics if "reward" in m]}
        after = valid_rate(tiny, work / "grpo", held, args.samples, args.max_tokens, args.temperature)
        result["held_out_grpo"] = after
        print(f"GRPO ({grpo.steps} steps, {grpo.wall_s:.0f} s): valid edits {after['valid']}/{after['n']} = "
              f"{after['rate']:.3f} [{after['ci'][0]:.3f}, {after['ci'][1]:.3f}]", flush=True)
        result["gain"] = gain(before, after, args.samples)
        print_gain(result["gain"])
    result["wall_s"] = time.perf_counter() - started
    if args.json is not None:
        args.json.write_text(json.dumps(no_nan(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
