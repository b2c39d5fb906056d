"""Commands for campaigns and their archives: ``run``, ``status``, ``archive ls|show|best``.

Every listing prints a table by default and takes ``--json`` (one array or object) and ``--csv``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
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
    except (SchemaError, Exception) as err:  # a file that is not SQLite raises sqlite3.DatabaseError
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
    return {
        "id": str(r["id"]), "campaign": r["campaign"], "operator": r["operator"],
        "isl": "-" if r["island"] is None else str(r["island"]), "gen": str(r["generation"]),
        "outcome": r["outcome"] or r["status"], "score": _score(r["score"]),
        "95% CI": f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if r.get("ci_low") is not None else "-",
        "parent": str(r["parent_id"] or "-"), "note": (r["note"] or "")[:80],
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
def run_command(config_file: Path, db: Path | None, max_evals: int | None, minutes: float | None,
                parallel: int | None) -> None:
    """Start the campaign in CONFIG, or resume it: same database, same name.

    Ctrl-C once finishes the evaluations in flight and stops; twice abandons them (they are
    re-run on resume). Progress goes to the terminal, details to a log file beside the database.
    """
    from evosearch.campaign import BudgetReached, Campaign
    from evosearch.config import load_config
    from evosearch.progress import ProgressView

    try:
        config = load_config(config_file, {"parallel": parallel} if parallel else None)
        campaign = Campaign(config, db_path=db)
    except ConfigError as err:
        raise BadInput(str(err)) from err
    log_path = campaign.db_path.with_suffix(".log")
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("evosearch")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    click.echo(f"campaign {config.name!r}: database {campaign.db_path}, log {log_path}", err=True)
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
    archive = _open(db)
    rows = []
    for c in archive.campaigns():
        config, state = json.loads(c["config"]), json.loads(c["state"])
        grid_size = 1
        for d in config["archive"]["descriptors"]:
            grid_size *= d["bins"]
        stats = archive.qd_stats(c["id"], grid_size, config["archive"]["qd_offset"])
        counts = archive.counts(c["id"])
        last = archive.events(c["id"])
        rows.append({
            "campaign": c["name"], "status": c["status"], "evaluations": state.get("evaluations", 0),
            "max_evals": state.get("budget", config["budget"])["max_evals"], "pending": counts.pop("pending", 0),
            "best": stats["best"], "qd_score": stats["qd_score"], "coverage": stats["coverage"],
            "cells": stats["cells"], "grid_cells": grid_size, "islands": config["archive"]["islands"],
            "outcomes": counts, "duplicates": state.get("duplicates", 0),
            "evals_per_hour": last[-1]["evals_per_hour"] if last else None, "updated": c["updated"],
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
    """Browse a campaign database: ls, show, best."""


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
    from rich.syntax import Syntax
    from rich.table import Table

    console = Console()
    ci = f" [{data['ci_low']:.3f}, {data['ci_high']:.3f}]" if data.get("ci_low") is not None else ""
    console.print(f"[bold]program {data['id']}[/]  {data['kind']}  operator {data['operator']}"
                  f"{'  model ' + data['model'] if data.get('model') else ''}  island "
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
        console.print(f"[red]error:[/] {data['error']}", highlight=False)
    calls = data.get("llm_calls") or []
    if calls:
        cost = sum(c["cost"] for c in calls)
        console.print(f"LLM: {calls[-1]['model']}, {len(calls)} answer(s): "
                      + ", ".join(c["status"] for c in calls) + f"; ${cost:.5f}; "
                      f"{sum(c['latency_s'] or 0 for c in calls):.1f} s (prompt and answers: --json)",
                      highlight=False)
    console.print(Syntax(data["source"], "python", line_numbers=True, word_wrap=True))


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
