"""Reproduce a published MinAtar comparison: PPO-clip, DPO and A2C trained on every game of a suite.

Each rule is trained by the real evaluator (sandboxed training jobs, trusted scoring, no
hurdle) on every game of ``--suite``, the held-out games included, with ``--seeds`` seeds
each. Reported: per game the mean return over seeds with its 95% bootstrap CI; over games x
seeds the IQM of normalised scores (0 random play, 1 the suite's PPO-clip calibration) with a
stratified-bootstrap 95% CI (rliable's aggregate, from ``evosearch.stats``); and learning
curves (``--curves``: one panel per game, each rule's mean over seeds with a shaded 95% band).

The default suite ``minatar`` is the literature's budget (10M steps per seed, 16 seeds): it is
GPU-sized, and must be calibrated first (``evosearch suite calibrate minatar --device cuda``).
``--published PATH`` takes the paper's figures as a small JSON the user fills in,
``{rule: {game: mean return}}`` (rules by name or label: ``ppo_clip`` or ``PPO-clip``; games by
env id or short name: ``MinAtar/Breakout-v1`` or ``Breakout``); they are printed beside the
measured ones, and a game on which the rules are ordered otherwise than in the paper is said
so, to be investigated before the result is accepted. No published figure ships with this
script. A rule that fails is reported with its error and the others still run (exit code 1).

    .venv/bin/python scripts/minatar_comparison.py [--suite minatar] [--seeds 16] [--device auto|cpu|cuda]
        [--rules ppo_clip,dpo,a2c] [--json PATH] [--curves PATH.png|svg] [--markdown PATH]
        [--published PATH] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from evosearch import fmt, stats  # noqa: E402
from evosearch.machine import machine_description  # noqa: E402

RULES_DIR = ROOT / "programs" / "rules"
DEFAULT_RULES = "ppo_clip,dpo,a2c"
LABELS = {"ppo_clip": "PPO-clip", "dpo": "DPO", "a2c": "A2C", "reinforce": "REINFORCE"}
CURVE_FORMATS = ("png", "svg")
#: Per task's training job (all seeds of one game train in one job): 10M steps x 16 seeds takes hours.
DEFAULT_TIMEOUT_S = 12 * 3600.0
RETURN_DIGITS = 2
SCORE_DIGITS = 3


class UsageError(ValueError):
    """A command line or input file the script cannot use: said before any training starts."""


# -- inputs --------------------------------------------------------------------------------------


def rule_paths(spec: str) -> dict[str, Path]:
    """``ppo_clip,dpo,a2c`` -> {name: path}; a name is a rule of ``programs/rules``, or a path ending in ``.py``."""
    rules: dict[str, Path] = {}
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            continue
        path = Path(item) if item.endswith(".py") else RULES_DIR / f"{item}.py"
        name = path.stem if item.endswith(".py") else item
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in RULES_DIR.glob("*.py")))
            raise UsageError(f"no rule {item!r} ({path} does not exist); known rules: {known}, or a path to a .py file")
        if name in rules:
            raise UsageError(f"rule {name!r} given twice")
        rules[name] = path
    if not rules:
        raise UsageError("--rules names no rule")
    return rules


def label(rule: str) -> str:
    return LABELS.get(rule, rule)


def _canon(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _game_key(env_id: str) -> str:
    """``MinAtar/Breakout-v1``, ``Breakout-v1`` and ``breakout`` all read as ``breakout``."""
    return _canon(re.sub(r"-v\d+$", "", env_id.split("/")[-1]))


def load_published(path: Path, rules: list[str], games: list[str]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The user's published figures as {rule: {env_id: value}} for this run's rules and games, and notes on the rest."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"--published {path}: {err}") from err
    if not isinstance(raw, dict):
        raise UsageError(f"--published {path}: expected {{rule: {{game: value}}}}, got {type(raw).__name__}")
    by_rule = {_canon(r): r for r in rules} | {_canon(label(r)): r for r in rules}
    by_game = {_game_key(g): g for g in games}
    published: dict[str, dict[str, float]] = {}
    notes = []
    for rule_key, values in raw.items():
        if not isinstance(values, dict):
            raise UsageError(f"--published {path}: {rule_key!r} must map games to values")
        rule = by_rule.get(_canon(str(rule_key)))
        if rule is None:
            notes.append(f"published figures for {rule_key!r} match no rule of this run ({', '.join(rules)})")
            continue
        for game_key, value in values.items():
            if fmt.finite(value) is None:
                raise UsageError(f"--published {path}: {rule_key} / {game_key}: {value!r} is not a number")
            game = by_game.get(_game_key(str(game_key)))
            if game is None:
                notes.append(f"published figure {rule_key} / {game_key!r} matches no game of this suite")
                continue
            published.setdefault(rule, {})[game] = float(value)
    return published, notes


# -- measuring -----------------------------------------------------------------------------------


def game_record(task: Any, cal: Any, held_out: bool) -> dict:
    """One rule's figures on one game from the evaluator's TaskResult."""
    returns = np.asarray(task.returns, dtype=np.float64)
    normalized = stats.normalize(returns, cal.r_random, cal.r_ref)
    low, high = stats.mean_ci(returns) if len(returns) > 1 else (float(returns[0]), float(returns[0]))
    return {"held_out": held_out, "returns": [float(x) for x in returns],
            "normalized": [float(x) for x in normalized], "mean_return": float(returns.mean()),
            "return_ci": [low, high], "normalized_mean": float(normalized.mean()),
            "curve_steps": list(task.curve_steps), "curves": [list(c) for c in task.curves],
            "train_wall_s": task.train_wall_s, "device": task.device, "backend": task.backend}


def aggregate(games: dict[str, dict], only: list[str] | None = None) -> dict | None:
    """IQM of normalised scores over games x seeds, with its stratified-bootstrap 95% CI."""
    names = [g for g in games if only is None or g in only]
    if not names:
        return None
    matrix = np.array([games[g]["normalized"] for g in names]).T  # [seeds, games]
    low, high = stats.stratified_bootstrap_ci(matrix, statistic=stats.iqm)
    return {"iqm": stats.iqm(matrix), "ci": [low, high], "games": names, "seeds": int(matrix.shape[0])}


def evaluate_rule(evaluator: Any, path: Path, suite: Any) -> dict:
    """Train and score one rule on every game; a failed rule's record says how it failed (never raises)."""
    from evosearch.program import Program

    start = time.perf_counter()
    try:
        result = evaluator.evaluate(Program.from_file(path))
    except Exception as err:  # the evaluator never raises for a bad program: this is the harness or the machine
        return {"path": str(path), "outcome": "infra_error", "stage": "", "error": f"{type(err).__name__}: {err}",
                "wall_s": time.perf_counter() - start, "games": {}, "aggregate": None}
    record: dict = {"path": str(path), "outcome": result.outcome, "stage": result.stage, "error": result.error,
                    "wall_s": result.wall_s, "cpu_s": result.cpu_s, "games": {}, "aggregate": None}
    held = {t.env_id for t in suite.held_out}
    for env_id, task in {**result.tasks, **result.held_out}.items():
        record["games"][env_id] = game_record(task, suite.calibrated(env_id), env_id in held)
    if not result.ok:
        record["output_tail"] = result.output_tail[-2000:]
        return record
    missing = [t.env_id for t in suite.tasks + suite.held_out if t.env_id not in record["games"]]
    if missing:
        record.update(outcome="incomplete", error=f"no result for {', '.join(missing)}")
        return record
    record["aggregate"] = aggregate(record["games"])
    record["aggregate_search_tasks"] = aggregate(record["games"], [t.env_id for t in suite.tasks])
    return record


# -- showing -------------------------------------------------------------------------------------


def return_cell(game: dict | None) -> str:
    if game is None:
        return fmt.MISSING
    return f"{fmt.score(game['mean_return'], RETURN_DIGITS)} {fmt.ci(*game['return_ci'], digits=RETURN_DIGITS)}"


def iqm_cell(agg: dict | None) -> str:
    if agg is None:
        return fmt.MISSING
    return f"{fmt.score(agg['iqm'], SCORE_DIGITS)} {fmt.ci(*agg['ci'], digits=SCORE_DIGITS)}"


def table_rows(rules: dict[str, dict], games: list[str], held_out: set[str], seeds: int,
               published: dict[str, dict[str, float]] | None) -> tuple[list[str], list[list[str]]]:
    """The comparison table: a row per game (held-out ones marked), then the IQM row."""
    header = ["game"]
    for rule in rules:
        header.append(label(rule))
        if published is not None:
            header.append(f"{label(rule)} (published)")
    rows = []
    for game in games:
        row = [f"{game} (held out)" if game in held_out else game]
        for rule, record in rules.items():
            row.append(return_cell(record["games"].get(game)) if record["outcome"] == "ok"
                       else f"failed ({record['outcome']})")
            if published is not None:
                value = published.get(rule, {}).get(game)
                row.append(fmt.MISSING if value is None else fmt.score(value, RETURN_DIGITS))
        rows.append(row)
    iqm_row = [f"IQM normalised ({len(games)} games x {seeds} seeds)"]
    for record in rules.values():
        iqm_row.append(iqm_cell(record["aggregate"]) if record["outcome"] == "ok" else f"failed ({record['outcome']})")
        if published is not None:
            iqm_row.append(fmt.MISSING)
    rows.append(iqm_row)
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    escape = lambda cell: cell.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, header)) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(map(escape, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _order(values: dict[str, float]) -> str:
    """``PPO-clip > DPO = A2C``: labels by value, highest first."""
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    text = label(ranked[0][0])
    for (_, previous), (rule, value) in zip(ranked, ranked[1:], strict=False):
        text += (" = " if value == previous else " > ") + label(rule)
    return text


def ordering_differences(rules: dict[str, dict], games: list[str],
                         published: dict[str, dict[str, float]]) -> list[dict]:
    """Games on which two rules are ordered by mean return otherwise than in the published figures.

    Only rules measured (ok) and published on a game count; two rules tied in the paper may come
    in any order here, two the paper ranks must come in its order.
    """
    differences = []
    for game in games:
        ours = {r: rec["games"][game]["mean_return"] for r, rec in rules.items()
                if rec["outcome"] == "ok" and game in rec["games"] and game in published.get(r, {})}
        theirs = {r: published[r][game] for r in ours}
        if len(ours) < 2:
            continue
        names = list(ours)
        discordant = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                      if theirs[a] != theirs[b] and np.sign(ours[a] - ours[b]) != np.sign(theirs[a] - theirs[b])]
        if discordant:
            differences.append({"game": game, "measured": _order(ours), "published": _order(theirs),
                                "pairs": [[a, b] for a, b in discordant]})
    return differences


def curves_figure(rules: dict[str, dict], games: list[str], held_out: set[str], title: str):
    """One panel per game: each rule's mean curve over seeds, shaded by the 95% bootstrap CI of that mean."""
    from matplotlib.figure import Figure

    columns = min(len(games), 3)
    lines = math.ceil(len(games) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.4 * lines + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(lines, columns, squeeze=False)).ravel()
    for ax in axes[len(games):]:
        ax.set_axis_off()
    for ax, game in zip(axes, games, strict=False):
        drawn = False
        for colour, (rule, record) in enumerate(rules.items()):
            figures = record["games"].get(game)
            if record["outcome"] != "ok" or not figures or not figures["curves"]:
                continue
            curves = np.asarray(figures["curves"], dtype=np.float64)  # [seeds, points]
            x = np.asarray(figures["curve_steps"], dtype=np.float64)
            band = np.array([stats.mean_ci(curves[:, i]) if len(curves) > 1 else (curves[0, i], curves[0, i])
                             for i in range(curves.shape[1])])
            ax.fill_between(x, band[:, 0], band[:, 1], color=f"C{colour}", alpha=0.25, linewidth=0)
            ax.plot(x, curves.mean(axis=0), color=f"C{colour}", linewidth=2,
                    label=f"{label(rule)} ({len(curves)} seeds)")
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no learning curves recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=f"{game} (held out)" if game in held_out else game, xlabel="training steps",
               ylabel="episode return")
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text.split(" (")[0], handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 4),
                   fontsize="small")
    fig.suptitle(f"{title}: mean learning curve over seeds (shaded: 95% bootstrap CI of the mean)")
    return fig


def _gpu_name(final: bool) -> str | None:
    """The GPU's name. During the run from the driver's /proc files (CUDA must not start in this process
    while the evaluator runs jobs); at the end from ``torch.cuda.get_device_name``."""
    if final:
        try:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
        except Exception:  # a broken driver: fall back to what /proc says
            pass
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        for line in info.read_text().splitlines():
            if line.startswith("Model:"):
                return line.split(":", 1)[1].strip()
    return None


def _no_nan(value: Any) -> Any:
    """NaN becomes null, so the JSON stays strict."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


# -- the run -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="minatar", help="suite name or path to a suite YAML (default: minatar)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per game (default: the suite's; minatar: 16)")
    parser.add_argument("--device", default="auto", help="where training runs: auto, cpu, cuda or cuda:N")
    parser.add_argument("--rules", default=DEFAULT_RULES,
                        help=f"comma-separated rules of programs/rules, or .py paths (default: {DEFAULT_RULES})")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here (rewritten after each rule)")
    parser.add_argument("--curves", type=Path, default=None, help="learning-curve figure, .png or .svg")
    parser.add_argument("--markdown", type=Path, default=None, help="write the comparison table as markdown")
    parser.add_argument("--published", type=Path, default=None,
                        help="the paper's figures, JSON {rule: {game: mean return}}, shown beside these")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"wall-clock limit of one game's training job, in seconds (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="report a run this script saved with --json instead of training (e.g. to compare it "
                             "with published figures later); --suite, --seeds, --device, --rules, --timeout unused")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.curves is not None and args.curves.suffix.lstrip(".") not in CURVE_FORMATS:
            raise UsageError(f"--curves {args.curves}: use a .png or .svg file")
        if args.from_json is not None:
            record = saved_run(args.from_json)
            games = [g["env_id"] for g in record["games"]]
            published, notes = (load_published(args.published, list(record["rules"]), games)
                                if args.published is not None else (record.get("published"), []))
            gpu = f"; GPU {record['gpu']}" if record["gpu"] else ""
            print(f"run of {record['date']} on {record['machine']}{gpu} (from {args.from_json}): "
                  f"suite {record['suite']}, {record['seeds']} seeds", flush=True)
            for note in notes:
                print(f"note: {note}", flush=True)
        else:
            record = measure(args)
            if isinstance(record, int):
                return record
            published = record["published"]
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record["published"] = published
    return report(record, args)


def saved_run(path: Path) -> dict:
    """A record this script wrote with ``--json``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"--from-json {path}: {err}") from err
    needed = ("suite", "seeds", "games", "rules", "date", "machine", "gpu")
    if not isinstance(record, dict) or any(k not in record for k in needed):
        raise UsageError(f"--from-json {path}: not a record of this script (needs {', '.join(needed)})")
    return record


def measure(args: argparse.Namespace) -> dict | int:
    """Train and score every rule on every game; the record, or an exit code when the run cannot start."""
    from evosearch.devices import DeviceError
    from evosearch.envs.suites import SuiteError, load_suite
    from evosearch.evaluate import CascadeConfig, RuleEvaluator

    try:
        if args.seeds is not None and args.seeds < 1:
            raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
        if args.timeout <= 0:
            raise UsageError(f"--timeout must be positive, got {args.timeout:g}")
        rules = rule_paths(args.rules)
        suite = load_suite(args.suite)
        games = [t.env_id for t in suite.tasks + suite.held_out]
        held_out = {t.env_id for t in suite.held_out}
        published, notes = (load_published(args.published, list(rules), games) if args.published is not None
                            else (None, []))
        evaluator = RuleEvaluator(CascadeConfig(suite=args.suite, seeds=args.seeds, hurdle=False, held_out=True,
                                                device=args.device, task_timeout_s=args.timeout), suite)
    except (UsageError, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SuiteError as err:
        print(f"error: {err}\n(a GPU-sized suite is calibrated where it runs: "
              f"evosearch suite calibrate {args.suite} --device cuda)", file=sys.stderr)
        return 2
    seeds = evaluator.seeds
    steps = {t.env_id: t.total_steps for t in suite.tasks + suite.held_out}
    gpu = _gpu_name(final=False) if evaluator.devices.gpus else None
    print(f"machine: {machine_description()}{f'; GPU {gpu}' if gpu else ''}\n"
          f"suite {suite.name}: {len(games)} games ({len(held_out)} held out), {seeds} seeds each, "
          f"{', '.join(f'{g} {s:,}' for g, s in steps.items())} steps per seed; device {evaluator.devices.describe()}; "
          f"rules {', '.join(label(r) for r in rules)}", flush=True)
    for note in notes:
        print(f"note: {note}", flush=True)

    record: dict = {"suite": suite.name, "suite_arg": args.suite, "seeds": seeds, "device": args.device, "gpu": gpu,
                    "date": time.strftime("%Y-%m-%d"), "machine": machine_description(),
                    "games": [{"env_id": g, "held_out": g in held_out, "total_steps": steps[g],
                               "calibration": vars(suite.calibrated(g))} for g in games],
                    "rules": {}, "published": published, "ordering_differs": []}
    for rule, path in rules.items():
        print(f"\n{label(rule)} ({path.name}): training {len(games)} games x {seeds} seeds ...", flush=True)
        result = evaluate_rule(evaluator, path, suite)
        record["rules"][rule] = result
        if result["outcome"] != "ok":
            print(f"{label(rule)}: FAILED ({result['outcome']}, stage {result['stage'] or '-'}) after "
                  f"{fmt.duration(result['wall_s'])}: {fmt.terminal_text(result['error'])}", flush=True)
        else:
            print(f"{label(rule)}: done in {fmt.duration(result['wall_s'])}", flush=True)
            width = max(len(g) for g in games) + len(" (held out)")
            for game in games:
                g = result["games"][game]
                name = f"{game} (held out)" if game in held_out else game
                print(f"  {name.ljust(width)}  return {return_cell(g)}  normalised "
                      f"{fmt.score(g['normalized_mean'], SCORE_DIGITS)}", flush=True)
            print(f"  {'IQM normalised'.ljust(width)}  {iqm_cell(result['aggregate'])}", flush=True)
        write_json(record, args.json)  # a long run that dies later keeps the rules it finished
    if any(g["device"].startswith("cuda") for rec in record["rules"].values() for g in rec["games"].values()):
        record["gpu"] = _gpu_name(final=True) or gpu  # every job has ended: CUDA may start here now
    return record


def write_json(record: dict, path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps(_no_nan(record), indent=2, allow_nan=False) + "\n")


def report(record: dict, args: argparse.Namespace) -> int:
    """The comparison table, the published ordering check and the files asked for; 1 if a rule failed."""
    games = [g["env_id"] for g in record["games"]]
    held_out = {g["env_id"] for g in record["games"] if g["held_out"]}
    seeds, published = record["seeds"], record["published"]
    header, rows = table_rows(record["rules"], games, held_out, seeds, published)
    print(f"\nmean return over {seeds} seeds [95% bootstrap CI]; IQM of normalised scores over games x seeds "
          f"[95% stratified-bootstrap CI]\n")
    print(text_table(header, rows))
    record["ordering_differs"] = []
    if published is not None:
        record["ordering_differs"] = ordering_differences(record["rules"], games, published)
        for diff in record["ordering_differs"]:
            print(f"WARNING: {diff['game']}: the ordering of the rules differs from the published ordering: "
                  f"measured {diff['measured']}, published {diff['published']}; investigate before accepting "
                  f"the result")
        if not record["ordering_differs"]:
            print("the ordering of the rules agrees with the published one on every game it gives")
    failed = [r for r, rec in record["rules"].items() if rec["outcome"] != "ok"]
    if failed:
        print(f"failed: {', '.join(label(r) for r in failed)} (see above)")
    write_json(record, args.json)
    if args.json is not None:
        print(f"wrote {args.json}")
    if args.markdown is not None:
        args.markdown.write_text(markdown_table(header, rows))
        print(f"wrote {args.markdown}")
    if args.curves is not None:
        fig = curves_figure(record["rules"], games, held_out, f"{record['suite']}, {seeds} seeds")
        kind = args.curves.suffix.lstrip(".")
        fig.savefig(args.curves, format=kind, dpi=150, metadata={"Date": None} if kind == "svg" else {})
        print(f"wrote {args.curves}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
