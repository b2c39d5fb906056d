"""``evosearch run CONFIG`` (start or resume a campaign) and ``evosearch status`` (how its campaigns stand)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from evosearch.cli.options import BadInput, db_option, device_option, emit, open_archive, output_options
from evosearch.fmt import score


@click.command("run")
@click.argument("config_file", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Database to create or resume (default: the config's).")
@click.option("--max-evals", type=click.IntRange(1), help="Stop when the campaign has this many evaluations.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), help="Stop this run after M minutes.")
@click.option("--parallel", type=click.IntRange(1, 256), help="Evaluations at once (default: the config's).")
@device_option(default=None, help="Where training runs (default: the config's evaluation.device, else auto: the GPU "
              "for torch-native tasks if there is one). With cuda, every parallel evaluation shares the GPU; cuda:N "
              "picks one.")
def run_command(config_file: Path, db: Path | None, max_evals: int | None, minutes: float | None,
                parallel: int | None, device: str | None) -> None:
    """Start the campaign in CONFIG, or resume it: same database, same name.

    Ctrl-C once finishes the evaluations in flight and stops; twice abandons them (they are
    re-run on resume). Progress goes to the terminal, details to a log file beside the database.
    """
    from evosearch import devices, sandbox
    from evosearch.campaign import BudgetReached, Campaign
    from evosearch.config import ConfigError, load_config
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
               f"best score {score(summary.best)} (program {summary.best_program or '-'}); QD score "
               f"{score(summary.qd_score)}; coverage {100 * summary.coverage:.1f}%\n"
               f"browse: evosearch archive best --db {campaign.db_path}")


# -- status --------------------------------------------------------------------------------------


@click.command("status")
@db_option
@output_options(json_help="one array, an object per campaign.",
                csv_help="one row per campaign (outcomes and LLM spend as JSON text).")
def status_command(db: Path | None, output: str) -> None:
    """Campaigns in the database: state, evaluations, best, QD score, coverage, outcomes."""
    from evosearch.browse import grid_of

    archive = open_archive(db)
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
                       f" ({r['pending']} pending)  best {score(r['best'])}  QD {score(r['qd_score'])}  coverage "
                       f"{100 * r['coverage']:.1f}% ({r['cells']}/{r['grid_cells']} cells, {r['islands']} islands)"
                       f"  rate {rate}\n  outcomes: {outcomes or '-'}; updated {r['updated']}")
            if r["llm_spend"]:
                cap = f" of ${r['llm_cost_cap']:.2f}" if r["llm_cost_cap"] is not None else ""
                click.echo(f"  LLM spend ${sum(r['llm_spend'].values()):.4f}{cap}: "
                           + ", ".join(f"{k} ${v:.4f}" for k, v in r["llm_spend"].items()))

    emit(rows, output, table)
