"""Commands for campaigns and their archives: ``run``, ``status``, ``archive ls|show|best|diff|lineage|stats|heatmap``.

Every listing prints a table by default and takes ``--json`` (one array or object) and ``--csv``.
What the browsing commands compute lives in :mod:`evosearch.browse`, shared with the web report.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import sys
from pathlib import Path

import click

from evosearch.config import ConfigError

EXIT_BAD_USAGE = 2


class BadInput(click.ClickException):
    """A clear one-line error with exit code 2 (bad config, missing database, unknown id)."""

    exit_code = EXIT_BAD_USAGE


def _find_db(db: Path | None) -> Path:
    if db is not None:
        if not db.is_file():
            raise BadInput(f"no archive database at {db}")
        return db
    found = sorted(Path("archive").glob("*.db"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise BadInput("no archive/*.db here: name the database (e.g. archive/quickstart.db)")
    raise BadInput(f"several databases in archive/: {', '.join(map(str, found))}; name one")


def _open(db: Path | None):
    from evosearch.archive.schema import SchemaError
    from evosearch.archive.store import Archive

    path = _find_db(db)
    try:
        return Archive(path)
    except (SchemaError, sqlite3.DatabaseError) as err:  # a newer archive, or a file that is not SQLite
        raise BadInput(f"{path}: cannot open as an evosearch archive: {err}") from err


def _emit(rows: list[dict], as_json: bool, as_csv: bool, table) -> None:
    """Print ``rows`` as JSON, CSV, or with ``table(rows)`` for people."""
    if as_json:
        click.echo(json.dumps(rows, allow_nan=False))
    elif as_csv:
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()}
                             for r in rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        table(rows)


def _score(value) -> str:
    return "-" if value is None else f"{value:.3f}"


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
    columns = ["id", "campaign", "operator", "isl", "gen", "outcome", "score", "95% CI", "parent", "note"]
    values = [_program_cells(r) for r in rows]
    constant = {c for c in ("campaign", "outcome") if len({v[c] for v in values}) <= 1}
    table = Table(title=title, pad_edge=False)
    for col in (c for c in columns if c not in constant):  # numbers never wrap; the note takes what is left
        table.add_column(col, justify="right" if col in ("id", "isl", "gen", "score", "parent") else "left",
                         no_wrap=col != "note", overflow="fold" if col == "note" else "ellipsis",
                         min_width=widths.get(col), ratio=1 if col == "note" else None)
    for v in values:
        table.add_row(*(v[c] for c in columns if c not in constant))
    Console().print(table)


def _program_cells(r: dict) -> dict[str, str]:
    """Table cells; archive text is escaped, since a note like ``[/x]`` would otherwise be read as markup."""
    from rich.markup import escape

    return {
        "id": str(r["id"]), "campaign": escape(r["campaign"]), "operator": escape(r["operator"]),
        "isl": "-" if r["island"] is None else str(r["island"]), "gen": str(r["generation"]),
        "outcome": r["outcome"] or r["status"], "score": _score(r["score"]),
        "95% CI": f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if r.get("ci_low") is not None else "-",
        "parent": str(r["parent_id"] or "-"), "note": escape((r["note"] or "")[:80]),
    }


def _campaign_id(archive, name: str | None) -> int | None:
    if name is None:
        return None
    row = archive.campaign(name)
    if row is None:
        raise BadInput(f"no campaign {name!r} in {archive.path}")
    return int(row["id"])


# -- run -----------------------------------------------------------------------------------------


@click.command("run")
@click.argument("config_file", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Database (default: the config's).")
@click.option("--max-evals", type=click.IntRange(1), help="Stop when the campaign has this many evaluations.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), help="Stop this run after M minutes.")
@click.option("--parallel", type=click.IntRange(1, 256), help="Evaluations at once (default: the config's).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Where training runs (default: the config's evaluation.device, else auto: the GPU for "
                   "torch-native tasks if there is one). With cuda, every parallel evaluation shares the GPU.")
def run_command(config_file: Path, db: Path | None, max_evals: int | None, minutes: float | None,
                parallel: int | None, device: str | None) -> None:
    """Start the campaign in CONFIG, or resume it: same database, same name.

    Ctrl-C once finishes the evaluations in flight and stops; twice abandons them (they are
    re-run on resume). Progress goes to the terminal, details to a log file beside the database.
    """
    from evosearch import devices, sandbox
    from evosearch.campaign import BudgetReached, Campaign
    from evosearch.config import load_config
    from evosearch.progress import ProgressView

    overrides: dict = {"parallel": parallel} if parallel else {}
    if device:
        overrides["evaluation"] = {"device": device}
    try:
        config = load_config(config_file, overrides)
        mode = sandbox.ensure(config.evaluation.sandbox)
        device_pool = devices.DevicePool(config.evaluation.device)
        campaign = Campaign(config, db_path=db)
    except (ConfigError, sandbox.SandboxUnavailable, devices.DeviceError) as err:
        raise BadInput(str(err)) from err
    log_path = campaign.db_path.with_suffix(".log")
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("evosearch")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    click.echo(f"campaign {config.name!r}: database {campaign.db_path}, log {log_path}", err=True)
    click.echo(f"sandbox: {mode.summary()}" + ("" if mode.strong else
               " -- weak: candidates are not isolated from this machine; see `evosearch doctor`"), err=True)
    click.echo(f"device: {device_pool.describe()}", err=True)
    try:
        with ProgressView() as view:
            summary = campaign.run(max_evals=max_evals, minutes=minutes, on_progress=view)
    except BudgetReached as err:
        click.echo(str(err), err=True)
        return
    except KeyboardInterrupt:
        click.echo("abandoned the running evaluations; run the same command to resume", err=True)
        sys.exit(130)
    finally:
        campaign.close()
        logger.removeHandler(handler)
        handler.close()
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()))
    click.echo(f"stopped: {summary.stop_reason}\n"
               f"evaluations {summary.evaluations} ({summary.evaluated_this_run} this run); outcomes: {outcomes}\n"
               f"best score {_score(summary.best)} (program {summary.best_program or '-'}); QD score "
               f"{summary.qd_score:.3f}; coverage {100 * summary.coverage:.1f}%\n"
               f"browse: evosearch archive best {campaign.db_path}")


# -- status --------------------------------------------------------------------------------------


@click.command("status")
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
def status_command(db: Path | None, as_json: bool, as_csv: bool) -> None:
    """Campaigns in DB: state, evaluations, best, QD score, coverage, outcomes."""
    from evosearch.browse import grid_of

    archive = _open(db)
    rows = []
    for c in archive.campaigns():
        config, state = json.loads(c["config"]), json.loads(c["state"])
        grid_size = grid_of(config).size
        stats = archive.qd_stats(c["id"], grid_size, config["archive"]["qd_offset"])
        counts = archive.counts(c["id"])
        last = archive.last_event(c["id"])
        rows.append({
            "campaign": c["name"], "status": c["status"], "evaluations": state.get("evaluations", 0),
            "max_evals": state.get("budget", config["budget"])["max_evals"], "pending": counts.pop("pending", 0),
            "best": stats["best"], "qd_score": stats["qd_score"], "coverage": stats["coverage"],
            "cells": stats["cells"], "grid_cells": grid_size, "islands": config["archive"]["islands"],
            "outcomes": counts, "duplicates": state.get("duplicates", 0),
            "evals_per_hour": last["evals_per_hour"] if last else None, "updated": c["updated"],
            "llm_spend": archive.llm_spend(c["id"]), "llm_cost_cap": (config.get("llm") or {}).get("cost_cap"),
        })

    def table(rows: list[dict]) -> None:
        for r in rows:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
            rate = f"{r['evals_per_hour']:.0f}/h" if r["evals_per_hour"] else "-"
            click.echo(f"{r['campaign']}  [{r['status']}]  evaluations {r['evaluations']}/{r['max_evals'] or '-'}"
                       f" ({r['pending']} pending)  best {_score(r['best'])}  QD {r['qd_score']:.3f}  coverage "
                       f"{100 * r['coverage']:.1f}% ({r['cells']}/{r['grid_cells']} cells, {r['islands']} islands)"
                       f"  rate {rate}\n  outcomes: {outcomes or '-'}; updated {r['updated']}")
            if r["llm_spend"]:
                cap = f" of ${r['llm_cost_cap']:.2f}" if r["llm_cost_cap"] is not None else ""
                click.echo(f"  LLM spend ${sum(r['llm_spend'].values()):.4f}{cap}: "
                           + ", ".join(f"{k} ${v:.4f}" for k, v in r["llm_spend"].items()))

    _emit(rows, as_json, as_csv, table)


# -- archive -------------------------------------------------------------------------------------


@click.group("archive")
def archive_group() -> None:
    """Browse a campaign database: ls, show, best, diff, lineage, stats, heatmap.

    DB defaults to the only archive/*.db under the current directory.
    """


@archive_group.command("ls")
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("--campaign", help="Only this campaign.")
@click.option("--outcome", help="Only programs with this outcome (ok, rejected, ...).")
@click.option("--island", type=int)
@click.option("--operator")
@click.option("--min-score", type=float)
@click.option("--sort", type=click.Choice(["id", "score", "created"]), default="id", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
def archive_ls(db, campaign, outcome, island, operator, min_score, sort, limit, as_json, as_csv) -> None:
    """List programs (without source)."""
    archive = _open(db)
    rows = [_program_row(r) for r in archive.list_programs(
        _campaign_id(archive, campaign), outcome=outcome, island=island, operator=operator, min_score=min_score,
        order=sort, limit=limit)]
    _emit(rows, as_json, as_csv, lambda rs: _print_programs(rs, f"{len(rs)} programs in {archive.path}"))


@archive_group.command("best")
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(1), default=10, show_default=True)
@click.option("--campaign", help="Only this campaign.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
def archive_best(db, count, campaign, as_json, as_csv) -> None:
    """The highest-scoring programs."""
    archive = _open(db)
    rows = [_program_row(r) for r in archive.list_programs(_campaign_id(archive, campaign), outcome="ok",
                                                           order="score", limit=count)]
    _emit(rows, as_json, as_csv, lambda rs: _print_programs(rs, f"best {len(rs)} in {archive.path}"))


@archive_group.command("show")
@click.argument("program_id", type=int)
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def archive_show(program_id: int, db: Path | None, as_json: bool) -> None:
    """One program: code, outcome, scores per task, parent and operator."""
    archive = _open(db)
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
    if as_json:
        click.echo(json.dumps(data, allow_nan=False))
        return
    _print_program(data)


def _print_program(data: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.syntax import Syntax
    from rich.table import Table

    console = Console()
    ci = f" [{data['ci_low']:.3f}, {data['ci_high']:.3f}]" if data.get("ci_low") is not None else ""
    console.print(f"[bold]program {data['id']}[/]  {data['kind']}  operator {escape(data['operator'])}"
                  f"{'  model ' + escape(data['model']) if data.get('model') else ''}  island "
                  f"{'all' if data['island'] is None else data['island']}  generation {data['generation']}  "
                  f"parents {data['parent_ids'] or '-'}", highlight=False)
    console.print(f"outcome [bold]{data['outcome'] or data['status']}[/] at {data['stage'] or '-'}   score "
                  f"[bold]{_score(data['score'])}[/]{ci}   fingerprint {data['fingerprint'] or '-'}", highlight=False)
    if data.get("note"):
        console.print(f"note: {data['note']}", markup=False, highlight=False)
    if data.get("descriptors"):
        console.print("descriptors: " + ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -"
                                                  for k, v in data["descriptors"].items()), highlight=False)
    tasks = (data.get("metrics") or {}).get("tasks") or {}
    if tasks:
        table = Table()
        for col in ("task", "mean return", "normalised", "95% CI"):
            table.add_column(col, justify="left" if col == "task" else "right")
        for env_id, t in tasks.items():
            table.add_row(env_id, f"{t['mean_return']:.1f}", f"{t['normalized_mean']:.3f}",
                          f"[{t['ci'][0]:.3f}, {t['ci'][1]:.3f}]")
        console.print(table)
    if data.get("error"):
        console.print(f"[red]error:[/] {escape(data['error'])}", highlight=False)
    calls = data.get("llm_calls") or []
    if calls:
        cost = sum(c["cost"] for c in calls)
        console.print(f"LLM: {calls[-1]['model']}, {len(calls)} answer(s): "
                      + ", ".join(c["status"] for c in calls) + f"; ${cost:.5f}; "
                      f"{sum(c['latency_s'] or 0 for c in calls):.1f} s (prompt and answers: --json)",
                      highlight=False)
    console.print(Syntax(data["source"], "python", line_numbers=True, word_wrap=True))


def _browse(fn, *args, **kwargs):
    """Call an :mod:`evosearch.browse` function; what the archive cannot answer exits 2 with its message."""
    from evosearch.browse import BrowseError

    try:
        return fn(*args, **kwargs)
    except BrowseError as err:
        raise BadInput(str(err)) from err


def _emit_object(data: dict, rows: list[dict], as_json: bool, as_csv: bool, table) -> None:
    """Like :func:`_emit` for a result that is one object: JSON gets ``data``, CSV the listing ``rows``."""
    if as_json:
        click.echo(json.dumps(data, allow_nan=False))
    else:
        _emit(rows, False, as_csv, lambda _rows: table(data))


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
@click.option("-U", "--context", type=click.IntRange(0), default=3, show_default=True, help="Lines of context.")
@click.option("--block", is_flag=True, help="Only the EVOLVE-BLOCKs (line numbers stay the files').")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
def archive_diff(program_id: int, second: str | None, third: Path | None, context: int, block: bool, as_json: bool,
                 as_csv: bool) -> None:
    """What changed: the unified diff from ID's parent to ID, or from ID to OTHER.

    A second argument that names an existing file is the database (archive diff 31
    archive/quickstart.db), otherwise it is OTHER. A seed has no parent: name OTHER. On a
    terminal the diff is coloured; piped, it is a plain unified diff.
    """
    from evosearch import browse

    other: int | None = None
    db: Path | None = third
    if second is not None:
        if third is None and Path(second).is_file():
            db = Path(second)
        elif _is_int(second):
            other = int(second)
        else:
            raise BadInput(f"{second!r} is neither a program id nor an existing database file")
    archive = _open(db)
    data = _browse(browse.diff, archive, program_id, other, context=context, block=block)
    _emit_object(data, [data], as_json, as_csv, _print_diff)


def _print_diff(data: dict) -> None:
    """A one-line summary, then the diff: coloured on a terminal, plain text (a valid patch) elsewhere."""
    from rich.console import Console
    from rich.syntax import Syntax

    change = ""
    if data["a_score"] is not None and data["b_score"] is not None:
        change = f": {_delta(data['b_score'] - data['a_score'])}"
    click.echo(f"program {data['a']} ({data['a_operator']}, {_score(data['a_score'])}) -> program {data['b']} "
               f"({data['b_operator']}, {_score(data['b_score'])}){change}")
    if data["b_note"]:
        click.echo(f"{data['b']}: {data['b_note']}")
    if not data["diff"]:
        click.echo("no difference")
        return
    console = Console()
    if console.is_terminal:
        console.print(Syntax(data["diff"], "diff", word_wrap=True, theme="ansi_dark"))
    else:
        click.echo(data["diff"], nl=False)


# -- archive lineage ------------------------------------------------------------------------------


@archive_group.command("lineage", short_help="Ancestors (and descendants) with score changes.")
@click.argument("program_id", metavar="ID", type=int)
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("--descendants", is_flag=True, help="Also the programs bred from ID, as a tree.")
@click.option("--max-depth", type=click.IntRange(1), default=100, show_default=True,
              help="Ancestors, and levels of descendants, to follow at most.")
@click.option("--json", "as_json", is_flag=True, help="The nested tree.")
@click.option("--csv", "as_csv", is_flag=True, help="One row per program, depth first.")
def archive_lineage(program_id: int, db: Path | None, descendants: bool, max_depth: int, as_json: bool,
                    as_csv: bool) -> None:
    """Where ID came from: its ancestors back to a seed, each with operator, score and the change from its parent.

    Crossover children show their second parent as (+ mate #N). The chain follows first parents.
    """
    from evosearch import browse

    archive = _open(db)
    data = _browse(browse.lineage, archive, program_id, descendants=descendants, max_depth=max_depth)
    _emit_object(data, browse.lineage_rows(data["tree"]), as_json, as_csv, _print_lineage)


def _lineage_label(node: dict):
    from rich.text import Text

    label = Text()
    label.append(f"#{node['id']}", style="bold reverse" if node["focus"] else "bold")
    label.append(f" {node['operator']}")
    if node.get("model"):
        label.append(f" ({node['model']})")
    if node["score"] is not None:
        label.append(f" {node['score']:.3f}")
    else:
        label.append(f" {node['outcome']}", style="red")
    if node["delta"] is not None:
        label.append(f" {_delta(node['delta'])}", style="green" if node["delta"] > 0 else "red")
    for mate in node["mates"]:
        label.append(f" (+ mate #{mate})", style="cyan")
    if node["note"]:
        label.append(f"  {node['note'][:70]}", style="dim")
    return label


def _print_lineage(data: dict) -> None:
    """The ancestors as one column, oldest first (a chain needs no indentation); descendants nest below ID."""
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    title = (f"lineage of program {data['id']}: {data['ancestors']} ancestor(s), oldest first"
             + (f"; {data['descendants']} descendant(s)" if data["descendants"] else "")
             + ("; cut short (--max-depth, or a broken chain)" if data["truncated"] else ""))
    root = Tree(Text(title), highlight=False)

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


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _thin(rows: list[dict], limit: int) -> list[dict]:
    """At most about ``limit`` rows, evenly spread, always with the first, the last, starts and stops."""
    if len(rows) <= limit:
        return rows
    keep = {0, len(rows) - 1} | {i for i, r in enumerate(rows) if r["kind"] in ("start", "stop")}
    keep |= {round(i * (len(rows) - 1) / (limit - 1)) for i in range(limit)}
    return [rows[i] for i in sorted(keep)]


@archive_group.command("stats", short_help="QD metrics over time, operators, LLM spend.")
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("--campaign", help="The campaign (needed when the database holds several).")
@click.option("--operators", "only_operators", is_flag=True, help="Only the per-operator table (all formats).")
@click.option("--rows", type=click.IntRange(2), default=30, show_default=True,
              help="Progress rows in the table (JSON and CSV have all).")
@click.option("--json", "as_json", is_flag=True, help="Progress, operators and LLM use as one object.")
@click.option("--csv", "as_csv", is_flag=True, help="The progress rows (with --operators: the operator rows).")
def archive_stats(db: Path | None, campaign: str | None, only_operators: bool, rows: int, as_json: bool,
                  as_csv: bool) -> None:
    """How the search went: QD metrics over time, what each operator achieved, LLM spend.

    Per operator: evals (trained, duplicates by fingerprint apart), ok%, entered (took a cell at
    some point), elites (hold one now), improved (beat their parent), mean and best score.
    """
    from evosearch import browse

    archive = _open(db)
    row = _browse(browse.pick_campaign, archive, campaign)
    data = browse.stats(archive, int(row["id"]))
    if only_operators:
        _emit(data["operators"], as_json, as_csv, lambda rs: _print_operators(rs, data["campaign"]))
        return
    _emit_object(data, data["events"], as_json, as_csv, lambda d: _print_stats(d, rows))


def _print_stats(data: dict, limit: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    events = data["events"]
    shown = _thin(events, limit)
    table = Table(title=Text(f"campaign {data['campaign']} [{data['status']}]: progress"), pad_edge=False)
    for col in ("elapsed", "event", "evals", "best", "QD score", "coverage", "evals/h"):
        table.add_column(col, justify="left" if col == "event" else "right", no_wrap=True)
    for e in shown:
        table.add_row(_elapsed(e["elapsed_s"]), e["kind"], str(e["evaluations"]), _score(e["best"]),
                      "-" if e["qd_score"] is None else f"{e['qd_score']:.3f}",
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
        console.print(f"LLM {m['model']}: {m['calls']} call(s), {m['ok']} usable, {m['programs']} program(s), "
                      f"{m['prompt_tokens']} + {m['completion_tokens']} tokens, ${m['cost']:.4f}",
                      markup=False, highlight=False)
    if data["llm"]:
        console.print(f"LLM spend ${sum(m['cost'] for m in data['llm']):.4f}", highlight=False)


def _print_operators(rows: list[dict], campaign: str | None) -> None:
    """One row per operator; a simple box so nine columns and an 18-character name fit 80 columns."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"operators{' of ' + campaign if campaign else ''}"), box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1), collapse_padding=True, show_edge=False)
    for col in ("operator", "evals", "ok%", "dup", "entered", "elites", "improved", "mean", "best"):
        table.add_column(col, justify="left" if col == "operator" else "right",
                         no_wrap=col != "operator", overflow="fold")
    for r in rows:
        pct = "-" if r["ok_rate"] is None else f"{100 * r['ok_rate']:.0f}"
        best = "-" if r["best_score"] is None else f"{r['best_score']:.3f} #{r['best_program']}"
        table.add_row(Text(r["operator"]), str(r["evaluated"]), pct, str(r["duplicates"]),
                      "?" if r["entered"] is None else str(r["entered"]), str(r["elites"]), str(r["improved"]),
                      _score(r["mean_score"]), best)
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
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("--campaign", help="The campaign (needed when the database holds several).")
@click.option("--island", type=int, help="One island's grid (default: each cell's best over the islands).")
@click.option("--json", "as_json", is_flag=True, help='{"axes": [...], "cells": [{"coords", "score", ...}]}')
@click.option("--csv", "as_csv", is_flag=True, help="One row per filled cell.")
def archive_heatmap(db: Path | None, campaign: str | None, island: int | None, as_json: bool, as_csv: bool) -> None:
    """The MAP-Elites grid: each cell's elite score and program id, coloured by score.

    Columns are the first descriptor, rows the second (high bins on top); a grid of three or
    more descriptors is shown projected onto the first two, each cell the best over the others.
    """
    from evosearch import browse

    archive = _open(db)
    row = _browse(browse.pick_campaign, archive, campaign)
    data = _browse(browse.heatmap, archive, int(row["id"]), island)
    _emit_object(data, data["cells"], as_json, as_csv, _print_heatmap)


def _print_heatmap(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from evosearch.browse import project

    console = Console()
    axes = data["axes"]
    cells = project(data["cells"], 2) if len(axes) > 2 else data["cells"]
    where = f"island {data['island']}" if data["island"] is not None else f"best of {data['islands']} island(s)"
    console.print(f"campaign {data['campaign']}, {where}: {data['filled']} of {data['grid_cells']} cells filled, "
                  f"QD score {data['qd_score']:.3f}", markup=False, highlight=False)
    if len(axes) > 2:
        rest = ", ".join(a["name"] for a in axes[2:])
        console.print(f"{len(axes)} descriptors: projected onto {axes[0]['name']} x {axes[1]['name']}, "
                      f"each cell the best over {rest}", markup=False, highlight=False)
    x = axes[0] if axes else {"name": "", "labels": ["all"]}
    y = axes[1] if len(axes) > 1 else {"name": "", "labels": [""]}
    scores = [c["score"] for c in cells]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    by_coords = {tuple(c["coords"][:2]) + ((0,) if len(axes) < 2 else ()): c for c in cells}
    table = Table(title=Text(f"rows: {y['name']}   columns: {x['name']}" if y["name"] else f"columns: {x['name']}"),
                  padding=(0, 0), show_lines=True, pad_edge=False)
    table.add_column(Text(y["name"] or " "), justify="right", no_wrap=True)
    for label in x["labels"]:
        table.add_column(Text(label), justify="center", no_wrap=True, min_width=_CELL_WIDTH)
    for j in reversed(range(len(y["labels"]))):
        row = [Text(y["labels"][j] + " ")]
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


# -- llm check -----------------------------------------------------------------------------------


@click.group("llm")
def llm_group() -> None:
    """The configured LLM endpoints."""


@llm_group.command("check")
@click.argument("config_file", metavar="CONFIG", type=click.Path(path_type=Path))
def llm_check(config_file: Path) -> None:
    """Contact each model in CONFIG: latency, tokens, cost, and one sample edit of the first seed.

    Exit 0 when every endpoint answered, 1 when one failed (the message says why), 2 for a bad config.
    """
    import difflib
    import time

    from evosearch.config import config_dir, llm_template_dir, load_config
    from evosearch.propose.base import Parent
    from evosearch.propose.llm import LlmProposer, LlmRequest
    from evosearch.propose.llm_client import LLMError

    try:
        config = load_config(config_file)
    except ConfigError as err:
        raise BadInput(str(err)) from err
    if not config.llm.models:
        raise BadInput(f"{config_file}: no llm.models configured")
    seed = config.seed_paths()[0]
    parent = Parent(source=seed.read_text(encoding="utf-8"), kind=config.kind)
    proposer = LlmProposer(config.llm, llm_template_dir(config.llm, config_dir(config)))
    failed = False
    for model in config.llm.models:
        click.echo(f"{model.label}: {model.model} at {model.base_url}")
        try:
            served = proposer.clients[model.label].list_models()
            if served and model.model not in served:
                click.echo(f"  warning: the endpoint lists {', '.join(served[:8])}, not {model.model}")
        except LLMError as err:
            click.echo(f"  (listing models: {err.message})")
        request = LlmRequest(model=model, kind=config.kind, parent=parent, feedback=None, inspirations=[], seed=0,
                             source_known=lambda sha: False, fingerprint_known=lambda fp: False,
                             fingerprint=lambda source: None)
        started = time.monotonic()
        result = proposer.propose(request)
        took = time.monotonic() - started
        for call in result.calls:
            if call.status != "llm_error":
                click.echo(f"  answer {call.attempt}: {call.latency_s:.2f} s, {call.prompt_tokens} prompt + "
                           f"{call.completion_tokens} completion tokens, ${call.cost:.5f}: {call.status}"
                           + (f" ({call.error.splitlines()[0][:120]})" if call.error else ""))
        if result.endpoint_error is not None:
            failed = True
            click.echo(f"  FAILED after {took:.1f} s: {result.endpoint_error}")
        elif result.proposal is None:
            click.echo(f"  the model answered but gave no usable edit: {result.reason}")
        else:
            diff = difflib.unified_diff(parent.source.splitlines(), result.proposal.source.splitlines(),
                                        seed.name, "edited", lineterm="", n=1)
            click.echo(f"  sample edit of {seed.name} applied ({result.proposal.note}):")
            for line in list(diff)[:30]:
                click.echo("    " + line)
    sys.exit(1 if failed else 0)
