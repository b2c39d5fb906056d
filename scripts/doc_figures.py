"""Write the figure tables in the docs from the files that recorded them, or check that they match.

    .venv/bin/python scripts/doc_figures.py           # rewrite every marked table in place
    .venv/bin/python scripts/doc_figures.py --check   # exit 1, naming each table that differs

Figures copied into prose by hand drift: a benchmark or a calibration is re-run, the JSON
changes, and the docs keep quoting the old run. So each table that comes from a recorded
result sits between two markers (HTML comments, invisible when rendered) that name its source:

    <!-- figures: calibration classic-quick -->
    | task | role | ... |
    <!-- /figures -->

and this script rebuilds the text between them. Sources (see ``TABLES``):

- ``calibration SUITE``: ``evosearch/envs/suites/SUITE.calibration.json`` (written by
  ``evosearch suite calibrate SUITE``) with the roles from ``SUITE.yaml``;
- ``eval-throughput``: ``bench/results_eval_throughput.json`` (``bench/eval_throughput.py --json``);
- ``campaign-rate``: ``bench/results_campaign_rate.json`` (``bench/campaign_rate.py --json``);
- ``winners-curse [FILE]``: ``bench/results_winners_curse.json`` or ``bench/FILE``
  (``scripts/winners_curse.py DB --json``);
- ``metatune-trajectory``: ``bench/results_metatune_demo.json`` (``evosearch metatune ID --json``);
- ``metatune-cost``: ``bench/results_metatune.json`` (``bench/metatune.py --json``);
- ``agent-learning``, ``agent-curve [EVERY]``: ``bench/results_agent_learning.json``
  (``bench/agent_learning.py --json``); ``agent-confirm``: ``bench/results_agent_learning_confirm.json``
  (``bench/agent_learning_confirm.py --json``);
- ``jax-reference``: ``bench/results_jax_reference.json`` (``bench/eval_throughput.py --backends native
  --json``, with the JAX reference measured).

It only formats what was recorded; it never measures. tests/test_docs_commands.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SUITES = ROOT / "evosearch" / "envs" / "suites"
BENCH = ROOT / "bench"

_BLOCK = re.compile(r"(<!-- figures: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /figures -->)", re.DOTALL)


def _num(value: float, digits: int = 1) -> str:
    """A figure as the docs print it: fixed digits, thousands commas, a true minus sign."""
    text = f"{value:,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        text = text.lstrip("-")  # no "−0.0"
    return text.replace("-", "−")


def _steps(total: int) -> str:
    return f"{total // 1000}k" if total % 1000 == 0 else f"{total:,}"


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def calibration(suite: str) -> str:
    """A suite's normalisation constants: random play, PPO-clip and its CI, per task and role."""
    calib = json.loads((SUITES / f"{suite}.calibration.json").read_text())
    spec = yaml.safe_load((SUITES / f"{suite}.yaml").read_text())
    roles = [(task["env_id"], "selection") for task in spec.get("tasks", [])]
    roles += [(task["env_id"], "held-out") for task in spec.get("held_out", [])]
    rows = []
    for env_id, role in roles:
        task = calib["tasks"].get(env_id)
        if task is None:
            continue  # a task the calibration left out (PPO-clip no better than random): the prose says why
        low, high = task["r_ref_ci"]
        rows.append([env_id, role, _steps(task["total_steps"]), _num(task["r_random"]), _num(task["r_ref"]),
                     f"[{_num(low)}, {_num(high)}]", _num(task["train_wall_s"], 0), task["backend"]])
    return _table(["task", "role", "steps/seed", "R_random", "R_ref (PPO-clip)", "95% CI of R_ref", "train s",
                   "backend"], ["---", "---", "---:", "---:", "---:", "---", "---:", "---"], rows)


_THROUGHPUT_NAMES = {
    "cleanrl-style reference": "CleanRL-style reference",
    "cleanrl-style reference x2": "CleanRL-style reference, one per core",
    "harness envpool x8": "harness, EnvPool",
    "harness envpool x64": "harness, EnvPool",
    "harness native x8": "harness, native",
    "harness native x64": "harness, native",
    "harness native x64, 2 procs": "harness, native, one per core",
}


def eval_throughput() -> str:
    """Agent-steps/s of the harness against the CleanRL-style loop; the fastest row in bold."""
    result = json.loads((BENCH / "results_eval_throughput.json").read_text())
    fastest = max(row["agent_steps_per_s"] for row in result["rows"])
    rows = []
    for row in result["rows"]:
        bold = (lambda text: f"**{text}**") if row["agent_steps_per_s"] == fastest else (lambda text: text)
        low, high = row["return_ci95"]
        inside = {None: "–", True: "yes", False: "no"}[row["inside_reference_ci"]]
        rows.append([bold(_THROUGHPUT_NAMES.get(row["config"], row["config"])), str(row["processes"]),
                     str(row["seeds"]), bold(_num(row["agent_steps_per_s"], 0)), bold(_num(row["ratio"])),
                     bold(_num(row["per_core_ratio"])), f"{_num(row['return_mean'])} [{_num(low, 0)}, {_num(high, 0)}]",
                     _num(row["normalised"], 2), inside])
    return _table(["configuration", "processes", "seeds", "agent-steps/s", "× reference", "× reference per core",
                   "return [95% CI]", "normalised", "inside the reference's CI"],
                  ["---", "---:", "---:", "---:", "---:", "---:", "---", "---:", "---"], rows)


def campaign_rate(target: float = 300.0) -> str:
    """Candidate evaluations per hour: the CleanRL-style bound, full evaluations, a real campaign."""
    result = json.loads((BENCH / "results_campaign_rate.json").read_text())
    if "suites" in result:  # one entry per suite measured; the docs show the quickstart's
        figures = result["suites"].get("quick") or next(iter(result["suites"].values()))
        bound = figures.get("reference_per_hour_upper_bound")
    else:  # the shape before suites were measured in turn
        figures, bound = result, result["reference"]["per_hour_upper_bound"]
    full, campaign = figures["full_evaluations"], figures["campaign"]
    names = {"ok": "ok", "candidate_error": "candidate errors", "duplicate": "duplicate"}
    outcomes = ", ".join(f"{count} {names.get(outcome, outcome)}"
                         for outcome, count in sorted(campaign["outcomes"].items(), key=lambda item: -item[1]))
    rows = [
        ["CleanRL-style loop, 2 processes, training alone (upper bound of an evaluator built on it)", "–", "–",
         _num(bound, 0), f"{bound / target:.2f}×"],
    ] if bound else []
    rows += [
        ["full evaluations: the four baselines × 2, every one trains the whole suite", str(full["evaluations"]),
         f"{_num(full['wall_s'], 0)} s", f"**{_num(full['per_hour'], 0)}**", f"{full['per_hour'] / target:.2f}×"],
        [f"the quickstart campaign itself ({outcomes})", str(campaign["evaluations"]),
         f"{_num(campaign['wall_s'], 0)} s", f"**{_num(campaign['per_hour'], 0)}**",
         f"{campaign['per_hour'] / target:.2f}×"],
    ]
    return _table(["measurement", "evaluations", "wall", "per hour", f"vs the {target:.0f}/hour target"],
                  ["---", "---:", "---:", "---:", "---:"], rows)


def jax_reference() -> str:
    """The harness against the JAX (and CleanRL-style) references, one process each."""
    result = json.loads((BENCH / "results_jax_reference.json").read_text())
    rows = []
    for row in result["rows"]:
        if row["processes"] > 1 and not row["config"].startswith("harness"):
            continue  # the reference's two-process run is the per-core yardstick, not a row here
        low, high = row["return_ci95"]
        rate = _num(row["agent_steps_per_s"], 0)
        if row.get("jax_ratio") is not None:
            rate += f" ({_num(row['jax_ratio'], 2)}× JAX)"
        rows.append([row["config"].replace(" x", ", seeds: ").replace(", 2 procs", " × 2 processes"), rate,
                     f"{_num(row['return_mean'])} [{_num(low, 0)}, {_num(high, 0)}]"])
    return _table(["configuration", "agent-steps/s", "return [95% CI]"], ["---", "---:", "---"], rows)


def metatune_trajectory(every: int = 10) -> str:
    """The constants of a metatune run every ``every`` meta-steps, with the agents' mean returns then."""
    data = json.loads((BENCH / "results_metatune_demo.json").read_text())
    names = [c["name"] for c in data["constants"]]
    tasks = list(data["records"][0]["returns"])
    rows = [["0", *("–" for _ in tasks), *(f"{c['before']:.4g}" for c in data["constants"])]]
    for record in data["records"]:
        if record["step"] % every == 0:
            returns = [_num(v) if v is not None else "–" for v in (record["returns"][t] for t in tasks)]
            rows.append([str(record["step"]), *returns, *(f"{v:.4g}" for v in record["values"])])
    return _table(["meta-step", *(f"{t} return" for t in tasks), *names],
                  ["---:"] * (1 + len(tasks) + len(names)), rows)


def metatune_cost() -> str:
    """Seconds and peak memory per meta-step at each K, against one plain iteration of the same agents."""
    data = json.loads((BENCH / "results_metatune.json").read_text())
    plain = data["plain_iteration_s"]
    rows = [["plain iteration (reference)", "–", f"{plain:.3f}", "1.0×", "–"]]
    for k, methods in data["inner_steps"].items():
        for method, figures in methods.items():
            rows.append([f"K = {k}", method, f"{figures['seconds']:.3f}", f"{figures['seconds'] / plain:.1f}×",
                         f"{figures['peak_mb']:,.0f}"])
    return _table(["unrolled updates", "method", "s per meta-step", "vs plain", "peak MiB"],
                  ["---", "---", "---:", "---:", "---:"], rows)


def agent_learning() -> str:
    """The tiny proposer's rate of valid edits on held-out prompts after SFT and after GRPO, and the gain."""
    data = json.loads((BENCH / "results_agent_learning.json").read_text())
    rows = []
    for name, key, training in (("SFT", "held_out_sft", "sft"), ("GRPO from SFT", "held_out_grpo", "grpo")):
        measured, run = data[key], data[training]
        low, high = measured["ci"]
        rows.append([name, f"{run['steps']} steps, {run['wall_s'] / 60:.0f} min",
                     f"{measured['valid']}/{measured['n']}", f"{measured['rate']:.3f} [{low:.3f}, {high:.3f}]",
                     str(measured["applies_but_rejected"]), str(measured["does_not_apply"])])
    gain = data["gain"]
    if "ci_completions" in gain:
        low, high = gain["ci_completions"]
        rows.append(["gain, completions as independent", "", "", f"**{gain['rate']:+.3f}** [{low:+.3f}, {high:+.3f}]",
                     "", ""])
    rows.append(["gain, bootstrap over prompts", "", "",
                 f"**{gain['rate']:+.3f}** [{gain['ci'][0]:+.3f}, {gain['ci'][1]:+.3f}]", "", ""])
    return _table(["model", "training", "valid edits", "rate [95% CI]", "apply, rejected", "do not apply"],
                  ["---", "---", "---:", "---", "---:", "---:"], rows)


def agent_confirm() -> str:
    """The same two adapters measured again on fresh prompts (``bench/agent_learning_confirm.py``)."""
    data = json.loads((BENCH / "results_agent_learning_confirm.json").read_text())
    rows = []
    for name, key in (("SFT", "sft"), ("GRPO from SFT", "grpo")):
        measured = data[key]
        low, high = measured["ci"]
        rows.append([name, f"{measured['valid']}/{measured['n']}", f"{measured['rate']:.3f} [{low:.3f}, {high:.3f}]",
                     ", ".join(map(str, measured["valid_per_prompt"]))])
    gain = data["gain"]
    rows.append(["gain, completions as independent", "",
                 f"**{gain['rate']:+.3f}** [{gain['ci_completions'][0]:+.3f}, {gain['ci_completions'][1]:+.3f}]", ""])
    bootstrap = f"**{gain['rate']:+.3f}** [{gain['ci'][0]:+.3f}, {gain['ci'][1]:+.3f}]"
    rows.append(["gain, bootstrap over prompts", "", bootstrap, ""])
    return _table(["model", "valid edits", "rate [95% CI]", f"valid per prompt ({data['samples']} each)"],
                  ["---", "---:", "---", "---"], rows)


def agent_curve(every: str = "5") -> str:
    """GRPO's mean reward per step (smoothed over ``every`` steps), its spread within groups, and the KL."""
    curve = json.loads((BENCH / "results_agent_learning.json").read_text())["grpo"]["curve"]
    size = int(every)
    rows = []
    for start in range(0, len(curve), size):
        chunk = curve[start:start + size]
        means = {key: sum(m.get(key, 0.0) for m in chunk) / len(chunk) for key in ("reward", "reward_std", "kl")}
        rows.append([f"{start + 1}–{start + len(chunk)}", f"{means['reward']:.3f}", f"{means['reward_std']:.3f}",
                     f"{means['kl']:.4f}"])
    return _table(["GRPO steps", "mean reward", "reward std (within groups)", "KL to SFT"],
                  ["---", "---:", "---:", "---:"], rows)


def winners_curse(source: str = "results_winners_curse.json") -> str:
    """A campaign's top programs: the score it ranked them by against the score measured again on fresh seeds.

    ``source``: a ``scripts/winners_curse.py --json`` file in ``bench/``; one written with ``--rank
    confirmed`` also shows the campaign's own confirmed score, which is then what the fresh one is against.
    """
    result = json.loads((BENCH / source).read_text())
    by_confirmed = result.get("rank") == "confirmed"
    key = "campaign_confirmed" if by_confirmed else "search"
    rows = []
    for r in result["rows"]:
        low, high = r["confirmed_ci"]
        held = ", ".join(f"{k} {_num(v, 2)}" for k, v in r["held_out"].items()) or "–"
        search_low, search_high = r["search_ci"]
        row = [f"#{r['program']}", f"{_num(r['search'], 3)} [{_num(search_low, 2)}, {_num(search_high, 2)}]"]
        row += [_num(r["campaign_confirmed"], 3)] if by_confirmed else [_num(r["again_same_seeds"], 3)]
        rows.append(row + [f"{_num(r['confirmed'], 3)} [{_num(low, 2)}, {_num(high, 2)}]",
                           f"{r[key] - r['confirmed']:+.3f}", held])
    gap = sum(r[key] - r["confirmed"] for r in result["rows"]) / max(1, len(result["rows"]))
    rows.append(["mean", "", "", "", f"**{gap:+.3f}**", ""])
    fresh = f"fresh seeds ({result['rows'][0]['seeds']}, from {result.get('first_seed', 1000)}) [95% CI]"
    third = "campaign's confirmed score" if by_confirmed else "same seeds again"
    gap_name = "confirmed − fresh" if by_confirmed else "search − fresh"
    return _table(["program", "search score [95% CI]", third, fresh, gap_name, "held-out (fresh seeds)"],
                  ["---", "---", "---:", "---", "---:", "---"], rows)


TABLES: dict[str, Callable[..., str]] = {
    "agent-learning": agent_learning,
    "agent-curve": agent_curve,
    "agent-confirm": agent_confirm,
    "winners-curse": winners_curse,
    "metatune-trajectory": metatune_trajectory,
    "metatune-cost": metatune_cost,
    "jax-reference": jax_reference,
    "calibration": calibration,
    "eval-throughput": eval_throughput,
    "campaign-rate": campaign_rate,
}


def regenerate(text: str) -> str:
    """``text`` with every marked table rebuilt from its source."""
    def rebuild(match: re.Match) -> str:
        name, *args = match.group("spec").split()
        if name not in TABLES:
            raise SystemExit(f"unknown figures source {name!r}: one of {', '.join(TABLES)}")
        return match.group(1) + TABLES[name](*args) + match.group(4)

    return _BLOCK.sub(rebuild, text)


def stale(paths: list[Path] = DOCS) -> list[str]:
    """The marked tables whose text differs from what their source gives now, as ``file: spec``."""
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            if regenerate(match.group(0)) != match.group(0):
                found.append(f"{path.relative_to(ROOT)}: {match.group('spec')}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs")
    args = parser.parse_args(argv)
    if args.check:
        differing = stale()
        for item in differing:
            print(f"stale: {item} (run scripts/doc_figures.py)")
        return 1 if differing else 0
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        new = regenerate(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
