"""``evosearch archive ls|show|best|diff|lineage|stats|heatmap``: browse a campaign database.

Every listing prints a table by default and takes --json (one array or object) and --csv.
What the browsing commands compute lives in evosearch.browse, shared with the web report.
Text from the archive (sources, notes, errors, operator and model names, campaign and axis
names) was written by candidates, LLMs or whoever made the file: the tables show it through
evosearch.cli.render, as plain characters, never as markup or terminal controls.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from evosearch import fmt
from evosearch.cli.options import BadInput, db_option, emit, emit_object, open_archive, output_options, pick_db
from evosearch.cli.render import echo, labelled, markup, plain
from evosearch.fmt import clock, score, terminal_text


def _program_row(row) -> dict:
    data = dict(row)
    for key in ("descriptors",):
        if data.get(key):
            data[key] = json.loads(data[key])
    return data


def _print_programs(rows: list[dict], title: str) -> None:
    """A table that fits 80 columns: columns whose value is the same on every row are left out."""
    from rich.console import Console
    from rich.table import Table

    widths = {"score": 5, "parent": 4, "95% CI": 12}
    columns = ["id", "campaign", "operator", "isl", "gen", "outcome", "score", "95% CI", "confirmed", "parent", "note"]
    values = [_program_cells(r) for r in rows]
    constant = {c for c in ("campaign", "outcome") if len({v[c] for v in values}) <= 1}
    if all(r.get("confirmed") is None for r in rows):  # a campaign without confirmation: no empty column
        constant.add("confirmed")
    table = Table(title=plain(title), pad_edge=False)
    for col in (c for c in columns if c not in constant):  # numbers never wrap; the note takes what is left
        numeric = col in ("id", "isl", "gen", "score", "confirmed", "parent")
        table.add_column(col, justify="right" if numeric else "left",
                         no_wrap=col != "note", overflow="fold" if col == "note" else "ellipsis",
                         min_width=widths.get(col), ratio=1 if col == "note" else None)
    for v in values:
        table.add_row(*(v[c] for c in columns if c not in constant))
    Console().print(table)


def _program_cells(r: dict) -> dict[str, str]:
    """Table cells; archive text is made safe, since a note like ``[/x]`` would otherwise be read as markup."""
    return {
        "id": str(r["id"]), "campaign": markup(r["campaign"]), "operator": markup(r["operator"]),
        "isl": "-" if r["island"] is None else str(r["island"]), "gen": str(r["generation"]),
        "outcome": markup(r["outcome"] or r["status"]), "score": score(r["score"]),
        "confirmed": score(r.get("confirmed")),
        "95% CI": fmt.ci(r.get("ci_low"), r.get("ci_high"), 2),
        "parent": str(r["parent_id"] or "-"), "note": markup((r["note"] or "")[:80]),
    }


def _campaign_id(archive, name: str | None) -> int | None:
    if name is None:
        return None
    row = archive.campaign(name)
    if row is None:
        raise BadInput(f"no campaign {name!r} in {archive.path}")
    return int(row["id"])


# The outcomes a program can have: evosearch.evaluate.result.OUTCOMES (a test checks they agree).
# Copied, not imported: importing the evaluator loads torch, seconds that a listing should not wait.
OUTCOMES = ("ok", "rejected", "candidate_error", "timeout", "memory_limit", "killed", "sandbox_failure",
            "infra_error", "duplicate")


def _check_island(archive, campaign_id: int | None, island: int | None) -> None:
    """Refuse an island no campaign has: an empty table would read as "no program there yet"."""
    if island is None:
        return
    islands = max((int(json.loads(c["config"])["archive"]["islands"]) for c in archive.campaigns()
                   if campaign_id is None or c["id"] == campaign_id), default=0)
    if island >= islands:
        where = "the campaign" if campaign_id is not None else archive.path
        raise BadInput(f"no island {island}: {where} has " + (f"islands 0 to {islands - 1}" if islands else "none"))


def _check_operator(archive, campaign_id: int | None, operator: str | None) -> None:
    """Refuse an operator that made no program here (a typo), naming the ones that did."""
    if operator is None:
        return
    known = sorted({r["operator"] for r in archive.list_programs(campaign_id)})
    if operator not in known:
        raise BadInput(f"no program made by operator {operator!r} in {archive.path}; operators there: "
                       f"{', '.join(known) or 'none'}")


# -- archive -------------------------------------------------------------------------------------


@click.group("archive")
def archive_group() -> None:
    """Browse a campaign database: ls, show, best, diff, lineage, stats, heatmap.

    Name the database with --db PATH (or as the last argument, DB); by default it is the only
    archive/*.db under the current directory.
    """


@archive_group.command("ls")
@db_option
@click.option("--campaign", help="Only this campaign.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only programs with this outcome.")
@click.option("--island", type=click.IntRange(0), help="Only programs bred on this island (0 to islands - 1).")
@click.option("--operator", help="Only programs made by this operator (seed, ast.constant, llm, ...).")
@click.option("--min-score", type=float)
@click.option("--sort", type=click.Choice(["id", "score", "created"]), default="id", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None)
@output_options(json_help="one array, an object per program.", csv_help="one row per program.")
def archive_ls(db, campaign, outcome, island, operator, min_score, sort, limit, output) -> None:
    """List programs (without source)."""
    archive = open_archive(db)
    campaign_id = _campaign_id(archive, campaign)
    _check_island(archive, campaign_id, island)
    _check_operator(archive, campaign_id, operator)
    rows = [_program_row(r) for r in archive.list_programs(
        campaign_id, outcome=outcome, island=island, operator=operator, min_score=min_score, order=sort, limit=limit)]
    emit(rows, output, lambda rs: _print_programs(rs, f"{len(rs)} programs in {archive.path}"))


@archive_group.command("best")
@db_option
@click.option("-n", "count", type=click.IntRange(1), default=10, show_default=True, help="How many.")
@click.option("--campaign", help="Only this campaign.")
@output_options(json_help="one array, an object per program.", csv_help="one row per program.")
def archive_best(db, count, campaign, output) -> None:
    """The highest-scoring programs."""
    archive = open_archive(db)
    rows = [_program_row(r) for r in archive.list_programs(_campaign_id(archive, campaign), outcome="ok",
                                                           order="score", limit=count)]
    emit(rows, output, lambda rs: _print_programs(rs, f"best {len(rs)} in {archive.path}"))


@archive_group.command("show")
@click.argument("program_id", metavar="ID", type=int)
@db_option
@output_options(formats=("table", "json"),
                json_help="one object: the program, its evaluations and its LLM calls with their prompts.")
def archive_show(program_id: int, db: Path | None, output: str) -> None:
    """One program: code, outcome, scores per task, parent and operator."""
    archive = open_archive(db)
    row = archive.program(program_id)
    if row is None:
        raise BadInput(f"no program {program_id} in {archive.path}")
    data = dict(row)
    for key in ("descriptors", "metrics", "parent_ids"):
        data[key] = json.loads(data[key]) if data.get(key) else None
    data["evaluations"] = [{k: (json.loads(v) if k == "curve" and v else v) for k, v in dict(e).items()}
                           for e in archive.evaluations(program_id)]
    data["llm_calls"] = [{k: (json.loads(v) if k == "prompt" else v) for k, v in dict(c).items()}
                         for c in archive.llm_calls_of(program_id)]
    emit_object(data, [], output, _print_program)


def _print_program(data: dict) -> None:
    """Everything in the row is the archive's text, shown safe: markup() in markup strings, plain() elsewhere."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    console = Console()
    ci = f" {fmt.ci(data['ci_low'], data['ci_high'])}" if data.get("ci_low") is not None else ""
    console.print(f"[bold]program {data['id']}[/]  {markup(data['kind'])}  operator {markup(data['operator'])}"
                  f"{'  model ' + markup(data['model']) if data.get('model') else ''}  island "
                  f"{'all' if data['island'] is None else data['island']}  generation {data['generation']}  "
                  f"parents {markup(data['parent_ids'] or '-')}", highlight=False)
    console.print(f"outcome [bold]{markup(data['outcome'] or data['status'])}[/] at {markup(data['stage'] or '-')}"
                  f"   score [bold]{score(data['score'])}[/]{ci}   fingerprint {markup(data['fingerprint'] or '-')}",
                  highlight=False)
    confirmed = (data.get("metrics") or {}).get("confirmed") or {}
    if confirmed.get("outcome") == "ok":
        console.print(f"confirmed on {confirmed.get('seeds')} fresh seeds: [bold]{score(confirmed.get('score'))}[/] "
                      f"{fmt.ci(*(confirmed.get('ci') or [None, None]))}   search score minus confirmed: "
                      f"{score((data['score'] or 0) - (confirmed.get('score') or 0))}", highlight=False)
    elif confirmed:
        console.print(plain(f"confirmation failed: {confirmed.get('outcome')}: {confirmed.get('error', '')}"),
                      highlight=False)
    if data.get("note"):
        console.print(plain(f"note: {data['note']}"), highlight=False)
    if data.get("descriptors"):
        console.print(plain("descriptors: " + ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -"
                                                        for k, v in data["descriptors"].items())), highlight=False)
    tasks = (data.get("metrics") or {}).get("tasks") or {}
    if tasks:
        table = Table()
        for col in ("task", "mean return", "normalised", "95% CI"):
            table.add_column(col, justify="left" if col == "task" else "right")
        for env_id, t in tasks.items():
            table.add_row(plain(env_id), fmt.score(t["mean_return"], 1), fmt.score(t["normalized_mean"]),
                          fmt.ci(*t["ci"]))
        console.print(table)
    if data.get("error"):
        console.print(labelled("error:", data["error"]))
    calls = data.get("llm_calls") or []
    if calls:
        cost = sum(c["cost"] for c in calls)
        console.print(plain(f"LLM: {calls[-1]['model']}, {len(calls)} answer(s): "
                            + ", ".join(str(c["status"]) for c in calls) + f"; ${cost:.5f}; "
                            f"{sum(c['latency_s'] or 0 for c in calls):.1f} s (prompt and answers: --json)"),
                      highlight=False)
    console.print(Syntax(terminal_text(data["source"], multiline=True), "python", line_numbers=True, word_wrap=True))


def _browse(fn, *args, **kwargs):
    """Call an evosearch.browse function; what the archive cannot answer exits 2 with its message."""
    from evosearch.browse import BrowseError

    try:
        return fn(*args, **kwargs)
    except BrowseError as err:
        raise BadInput(str(err)) from err


def _delta(value: float | None) -> str:
    return "" if value is None else f"{value:+.3f}"


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# -- archive diff ---------------------------------------------------------------------------------


@archive_group.command("diff", short_help="Diff a program against its parent, or another.")
@click.argument("program_id", metavar="ID", type=int)
@click.argument("second", metavar="[OTHER]", required=False)
@click.argument("third", metavar="[DB]", required=False, type=click.Path(path_type=Path))
@db_option(positional=False)
@click.option("-U", "--context", type=click.IntRange(0), default=3, show_default=True, help="Lines of context.")
@click.option("--block", is_flag=True, help="Only the EVOLVE-BLOCKs (line numbers stay the files').")
@output_options(json_help="one object: both programs, their scores, the changed constants and the diff.",
                csv_help="the same object as one CSV row.")
def archive_diff(program_id: int, second: str | None, third: Path | None, db: Path | None, context: int, block: bool,
                 output: str) -> None:
    """What changed: the unified diff from ID's parent to ID, or from ID to OTHER.

    A second argument that names an existing file is the database (archive diff 31
    archive/quickstart.db), otherwise it is OTHER; --db names the database too. A seed has
    no parent: name OTHER. On a terminal the diff is coloured; piped, it is a plain unified diff.
    """
    from evosearch import browse

    other: int | None = None
    given: Path | None = third
    if second is not None:
        if third is None and Path(second).is_file():
            given = Path(second)
        elif _is_int(second):
            other = int(second)
        else:
            raise BadInput(f"{second!r} is neither a program id nor an existing database file")
    archive = open_archive(pick_db(given, db))
    data = _browse(browse.diff, archive, program_id, other, context=context, block=block)
    emit_object(data, [data], output, _print_diff)


def _print_diff(data: dict) -> None:
    """A one-line summary, then the diff: coloured on a terminal, plain text (a valid patch) elsewhere."""
    from rich.console import Console
    from rich.syntax import Syntax

    change = ""
    if data["a_score"] is not None and data["b_score"] is not None:
        change = f": {_delta(data['b_score'] - data['a_score'])}"
    echo(f"program {data['a']} ({terminal_text(data['a_operator'])}, {score(data['a_score'])}) -> program "
         f"{data['b']} ({terminal_text(data['b_operator'])}, {score(data['b_score'])}){change}")
    if data["b_note"]:
        echo(f"{data['b']}: {terminal_text(data['b_note'])}")
    if data["constants"]:
        echo("constants: " + ", ".join(f"{c['name']} {c['before']!r} -> {c['after']!r}" for c in data["constants"]))
    if not data["diff"]:
        click.echo("no difference")
        return
    console = Console()
    if console.is_terminal:  # for a person: the sources' text made safe
        console.print(Syntax(terminal_text(data["diff"], multiline=True), "diff", word_wrap=True, theme="ansi_dark"))
    else:  # for a program (patch, git apply): the exact text (color=True: click would strip colour codes)
        click.echo(data["diff"], nl=False, color=True)


# -- archive lineage ------------------------------------------------------------------------------


@archive_group.command("lineage", short_help="Ancestors (and descendants) with score changes.")
@click.argument("program_id", metavar="ID", type=int)
@db_option
@click.option("--descendants", is_flag=True, help="Also the programs bred from ID, as a tree.")
@click.option("--max-depth", type=click.IntRange(1), default=100, show_default=True,
              help="Ancestors, and levels of descendants, to follow at most.")
@output_options(json_help="the nested tree.", csv_help="one row per program, depth first.")
def archive_lineage(program_id: int, db: Path | None, descendants: bool, max_depth: int, output: str) -> None:
    """Where ID came from: its ancestors back to a seed, each with operator, score and the change from its parent.

    Crossover children show their second parent as (+ mate #N). The chain follows first parents.
    """
    from evosearch import browse

    archive = open_archive(db)
    data = _browse(browse.lineage, archive, program_id, descendants=descendants, max_depth=max_depth)
    emit_object(data, browse.lineage_rows(data["tree"]), output, _print_lineage)


def _lineage_label(node: dict):
    from rich.text import Text

    label = Text()
    label.append(f"#{node['id']}", style="bold reverse" if node["focus"] else "bold")
    label.append(f" {terminal_text(node['operator'])}")
    if node.get("model"):
        label.append(f" ({terminal_text(node['model'])})")
    if node["score"] is not None:
        label.append(f" {fmt.score(node['score'])}")
    else:
        label.append(f" {terminal_text(node['outcome'])}", style="red")
    if node["delta"] is not None:
        label.append(f" {_delta(node['delta'])}", style="green" if node["delta"] > 0 else "red")
    for mate in node["mates"]:
        label.append(f" (+ mate #{mate})", style="cyan")
    if node["note"]:
        label.append(f"  {terminal_text(node['note'][:70])}", style="dim")
    return label


def _print_lineage(data: dict) -> None:
    """The ancestors as one column, oldest first (a chain needs no indentation); descendants nest below ID."""
    from rich.console import Console
    from rich.tree import Tree

    title = (f"lineage of program {data['id']}: {data['ancestors']} ancestor(s), oldest first"
             + (f"; {data['descendants']} descendant(s)" if data["descendants"] else "")
             + ("; cut short (--max-depth, or a broken chain)" if data["truncated"] else ""))
    root = Tree(plain(title), highlight=False)

    def add_subtree(branch: Tree, node: dict) -> None:
        for child in node["children"]:
            add_subtree(branch.add(_lineage_label(child)), child)

    node = data["tree"]
    while True:
        branch = root.add(_lineage_label(node))
        if node["focus"]:
            add_subtree(branch, node)
            break
        node = node["children"][0]
    Console().print(root)


# -- archive stats --------------------------------------------------------------------------------


def _thin(rows: list[dict], limit: int) -> list[dict]:
    """At most about ``limit`` rows, evenly spread, always with the first, the last, starts and stops."""
    if len(rows) <= limit:
        return rows
    keep = {0, len(rows) - 1} | {i for i, r in enumerate(rows) if r["kind"] in ("start", "stop")}
    keep |= {round(i * (len(rows) - 1) / (limit - 1)) for i in range(limit)}
    return [rows[i] for i in sorted(keep)]


@archive_group.command("stats", short_help="QD metrics over time, operators, LLM spend.")
@db_option
@click.option("--campaign", help="The campaign (needed when the database holds several).")
@click.option("--operators", "only_operators", is_flag=True, help="Only the per-operator table (all formats).")
@click.option("--rows", type=click.IntRange(2), default=30, show_default=True,
              help="Progress rows in the table (JSON and CSV have all).")
@output_options(json_help="progress, operators and LLM use as one object (with --operators: the operator rows).",
                csv_help="the progress rows (with --operators: the operator rows).")
def archive_stats(db: Path | None, campaign: str | None, only_operators: bool, rows: int, output: str) -> None:
    """How the search went: QD metrics over time, what each operator achieved, LLM spend.

    Per operator: evals (trained, duplicates by fingerprint apart), ok%, entered (took a cell at
    some point), elites (hold one now), improved (beat their parent), mean and best score.
    """
    from evosearch import browse

    archive = open_archive(db)
    row = _browse(browse.pick_campaign, archive, campaign)
    data = browse.stats(archive, int(row["id"]))
    if only_operators:
        emit(data["operators"], output, lambda rs: _print_operators(rs, data["campaign"]))
        return
    emit_object(data, data["events"], output, lambda d: _print_stats(d, rows))


def _print_stats(data: dict, limit: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    events = data["events"]
    shown = _thin(events, limit)
    table = Table(title=plain(f"campaign {data['campaign']} [{data['status']}]: progress"), pad_edge=False)
    for col in ("elapsed", "event", "evals", "best", "QD score", "coverage", "evals/h"):
        table.add_column(col, justify="left" if col == "event" else "right", no_wrap=True)
    for e in shown:
        table.add_row(clock(e["elapsed_s"]), plain(e["kind"]), str(e["evaluations"]), score(e["best"]),
                      fmt.score(e["qd_score"]),
                      "-" if e["coverage"] is None else f"{100 * e['coverage']:.1f}%",
                      "-" if not e["evals_per_hour"] else f"{e['evals_per_hour']:.0f}")
    if len(shown) < len(events):
        table.caption = f"{len(shown)} of {len(events)} events; --rows N for more, --json/--csv for all"
    if events:
        console.print(table)
    else:
        console.print("no events recorded yet")
    _print_operators(data["operators"], None)
    for m in data["llm"]:
        console.print(plain(f"LLM {m['model']}: {m['calls']} call(s), {m['ok']} usable, {m['programs']} program(s),"
                            f" {m['prompt_tokens']} + {m['completion_tokens']} tokens, ${m['cost']:.4f}"),
                      highlight=False)
    if data["llm"]:
        console.print(f"LLM spend ${sum(m['cost'] for m in data['llm']):.4f}", highlight=False)


def _print_operators(rows: list[dict], campaign: str | None) -> None:
    """One row per operator; a simple box so nine columns and an 18-character name fit 80 columns."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=plain(f"operators{' of ' + campaign if campaign else ''}"), box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1), collapse_padding=True, show_edge=False)
    for col in ("operator", "evals", "ok%", "dup", "entered", "elites", "improved", "mean", "best"):
        table.add_column(col, justify="left" if col == "operator" else "right",
                         no_wrap=col != "operator", overflow="fold")
    for r in rows:
        pct = "-" if r["ok_rate"] is None else f"{100 * r['ok_rate']:.0f}"
        best = "-" if r["best_score"] is None else f"{r['best_score']:.3f} #{r['best_program']}"
        table.add_row(plain(r["operator"]), str(r["evaluated"]), pct, str(r["duplicates"]),
                      "?" if r["entered"] is None else str(r["entered"]), str(r["elites"]), str(r["improved"]),
                      score(r["mean_score"]), best)
    if any(r["entered"] is None for r in rows):
        table.caption = "entered ?: replaying the archive did not reproduce its cells"
    Console().print(table)


# -- archive heatmap ------------------------------------------------------------------------------

# Viridis, dark to light: a colour-blind-safe scale that also reads in greyscale.
_SCALE = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
_CELL_WIDTH = 7


def _colour(t: float) -> tuple[str, str]:
    """Background and a readable foreground for a position ``t`` in [0, 1] on the scale."""
    t = min(1.0, max(0.0, t)) * (len(_SCALE) - 1)
    i = min(int(t), len(_SCALE) - 2)
    f = t - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(_SCALE[i], _SCALE[i + 1], strict=True))
    return f"rgb({r},{g},{b})", "black" if t > (len(_SCALE) - 1) / 2 else "white"


@archive_group.command("heatmap", short_help="The MAP-Elites grid, coloured by score.")
@db_option
@click.option("--campaign", help="The campaign (needed when the database holds several).")
@click.option("--island", type=int, help="One island's grid (default: each cell's best over the islands).")
@output_options(json_help='{"axes": [...], "cells": [{"coords", "score", ...}]}', csv_help="one row per filled cell.")
def archive_heatmap(db: Path | None, campaign: str | None, island: int | None, output: str) -> None:
    """The MAP-Elites grid: each cell's elite score and program id, coloured by score.

    Columns are the first descriptor, rows the second (high bins on top); a grid of three or
    more descriptors is shown projected onto the first two, each cell the best over the others.
    """
    from evosearch import browse

    archive = open_archive(db)
    row = _browse(browse.pick_campaign, archive, campaign)
    data = _browse(browse.heatmap, archive, int(row["id"]), island)
    emit_object(data, data["cells"], output, _print_heatmap)


def _print_heatmap(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from evosearch.browse import project

    console = Console()
    axes = data["axes"]
    cells = project(data["cells"], 2) if len(axes) > 2 else data["cells"]
    where = f"island {data['island']}" if data["island"] is not None else f"best of {data['islands']} island(s)"
    console.print(plain(f"campaign {data['campaign']}, {where}: {data['filled']} of {data['grid_cells']} cells "
                        f"filled, QD score {data['qd_score']:.3f}"), highlight=False)
    if len(axes) > 2:
        rest = ", ".join(a["name"] for a in axes[2:])
        console.print(plain(f"{len(axes)} descriptors: projected onto {axes[0]['name']} x {axes[1]['name']}, "
                            f"each cell the best over {rest}"), highlight=False)
    x = axes[0] if axes else {"name": "", "labels": ["all"]}
    y = axes[1] if len(axes) > 1 else {"name": "", "labels": [""]}
    scores = [c["score"] for c in cells]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    by_coords = {tuple(c["coords"][:2]) + ((0,) if len(axes) < 2 else ()): c for c in cells}
    table = Table(title=plain(f"rows: {y['name']}   columns: {x['name']}" if y["name"] else f"columns: {x['name']}"),
                  padding=(0, 0), show_lines=True, pad_edge=False)
    table.add_column(plain(y["name"] or " "), justify="right", no_wrap=True)
    for label in x["labels"]:
        table.add_column(plain(label), justify="center", no_wrap=True, min_width=_CELL_WIDTH)
    for j in reversed(range(len(y["labels"]))):
        row = [plain(y["labels"][j] + " ")]
        for i in range(len(x["labels"])):
            cell = by_coords.get((i, j))
            if cell is None:
                row.append(Text("·", style="dim", justify="center"))
                continue
            bg, fg = _colour((cell["score"] - low) / (high - low) if high > low else 1.0)
            row.append(Text(f"{cell['score']:.3f}\n#{cell['program_id']}", style=f"{fg} on {bg}", justify="center"))
        table.add_row(*row)
    console.print(table)
    if scores:
        legend = Text(f"{low:.3f} ")
        for k in range(10):
            legend.append("  ", style=f"on {_colour(k / 9)[0]}")
        legend.append(f" {high:.3f}   (#N: the elite's program id; archive show N)")
        console.print(legend)
