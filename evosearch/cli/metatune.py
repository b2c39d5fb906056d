"""``evosearch metatune ID``: tune an archived rule's constants by meta-gradients, store and score the child.

The tuning runs in sandboxed jobs and prints one line per meta-step; the tuned child (the same
source with new numbers) is stored in the parent's campaign with operator ``metatune`` and a
parent link, then scored by that campaign's cascade, so its archive score is measured like any
other program's, never taken from the tuning.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from evosearch import fmt
from evosearch.cli.options import BadInput, db_option, find_db, output_options, user_errors


def _progress_line(record: dict, names: list[str], total: int) -> str:
    returns = "  ".join(f"{task} {fmt.score(value) if value is not None else '-'}"
                        for task, value in record["returns"].items())
    constants = " ".join(f"{name}={value:.4g}{'*' if es else ''}"
                         for name, value, es in zip(names, record["values"], record["by_es"], strict=True))
    return f"meta-step {record['step']:>3}/{total}  return {returns}  {constants}  ({record['seconds']:.1f} s)"


@click.command("metatune", short_help="Tune a rule's constants by meta-gradients; store and score the child.")
@click.argument("program_id", type=int, metavar="ID")
@db_option()
@click.option("--meta-steps", type=click.IntRange(1), default=60, show_default=True,
              help="Meta-steps (each: one iteration of every agent's updates, then one step of the constants).")
@click.option("--inner-steps", type=click.IntRange(1), default=4, show_default=True,
              help="K: agent updates per meta-step that the meta-gradient flows through (the last K of an iteration).")
@click.option("--method", type=click.Choice(["auto", "grad", "es"]), default="auto", show_default=True,
              help="grad: meta-gradients; es: evolution strategies; auto: gradients, ES where they vanish.")
@click.option("--population", type=click.IntRange(1), default=8, show_default=True,
              help="Agents per task, at staggered points of their lifetimes.")
@click.option("--meta-lr", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True,
              help="Adam's step on the constants (log space for positive ones).")
@click.option("--only", multiple=True, metavar="NAME", help="Tune only this constant (repeatable).")
@click.option("--suite", default=None, help="Train the agents on this suite's tasks (default: the campaign's).")
@click.option("--device", default="cpu", show_default=True, metavar="[cpu|cuda|cuda:N]",
              help="Where the tuning jobs train.")
@click.option("--no-store", is_flag=True, help="Print the tuned source; store and score nothing.")
@output_options(formats=("table", "json"), json_help="progress lines go to stderr")
def metatune_command(program_id: int, db: Path | None, meta_steps: int, inner_steps: int,
                     method: str, population: int, meta_lr: float, only: tuple[str, ...], suite: str | None,
                     device: str, no_store: bool, output: str) -> None:
    """Tune program ID's constants (numbers and UPPER_CASE constants in its EVOLVE-BLOCK).

    Agents train on the suite's torch-native tasks with the rule; the meta-gradient through
    their last K updates moves the constants to improve the updated agents' policy gradient on
    fresh experience. A constant that only selects a branch (PPO's clip) gets no gradient and
    is tuned by evolution strategies under --method auto (marked * in the progress lines).
    """
    from evosearch.archive.selection import as_parent
    from evosearch.archive.store import Archive
    from evosearch.campaign import Campaign
    from evosearch.config import ConfigError, MetatuneConfig, config_from_dict, resolved_suite
    from evosearch.devices import DEVICE_PATTERN
    from evosearch.envs.suites import SuiteError, load_suite
    from evosearch.metagrad.constants import LiftError, lift
    from evosearch.metagrad.operator import NAME, describe, settings_from
    from evosearch.metagrad.run import MetatuneError, metatune, tuning_tasks
    from evosearch.propose.base import Proposal

    if device == "auto" or not DEVICE_PATTERN.match(device):
        raise BadInput(f"--device: {device!r} is not one of cpu, cuda, cuda:N")
    path = find_db(db)
    with user_errors():
        archive = Archive(path, readonly=True)
    row = archive.program(program_id)
    if row is None:
        raise BadInput(f"no program {program_id} in {path}")
    if row["kind"] != "rule":
        raise BadInput(f"program {program_id} is a {row['kind']}; metatune tunes rules")
    campaign_row = next(c for c in archive.campaigns() if c["id"] == row["campaign_id"])
    archive.close()
    try:
        config = config_from_dict(json.loads(campaign_row["config"]))
    except ConfigError as err:
        raise BadInput(f"campaign {campaign_row['name']!r}: its stored config no longer loads: {err}") from None
    try:
        names = lift(row["source"], only=only or None).names()
    except LiftError as err:
        raise BadInput(f"program {program_id}: {err}") from None
    settings = replace(config.metatune, meta_steps=meta_steps, inner_steps=inner_steps, method=method,
                       population=population, meta_lr=meta_lr, only=tuple(only), device=device)
    try:
        tasks = tuning_tasks(load_suite(suite or resolved_suite(config)), inner_steps)
    except (SuiteError, MetatuneError) as err:
        raise BadInput(str(err)) from None
    assert isinstance(settings, MetatuneConfig)

    def say(line: str) -> None:
        click.echo(line, err=output == "json")

    say(f"metatune program {program_id}: {len(names)} constant(s) ({', '.join(names)}) on "
        f"{', '.join(t.env_id for t in tasks)}, {meta_steps} meta-steps, K={inner_steps}, method {method}")
    try:
        result = metatune(row["source"], tasks, settings_from(settings), filename=f"program-{program_id}",
                          on_record=lambda r: say(_progress_line(r, names, meta_steps)))
    except MetatuneError as err:
        raise click.ClickException(f"metatune failed ({err.outcome}): {err}") from None
    changes = result.changes()
    data: dict = {"parent": program_id, "constants": changes, "records": result.records, "tasks": result.tasks,
                  "tuning_wall_s": result.wall_s, "child": None}
    if no_store:
        data["source"] = result.child_source
    elif result.child_source == row["source"]:
        say("no constant moved enough to change the source; nothing stored")
    else:
        campaign = Campaign(config, db_path=path)
        try:
            proposal = Proposal(source=result.child_source, operator=NAME, parent_ids=(program_id,),
                                note=describe(result))
            try:
                child_id = campaign.adopt(proposal, [as_parent(row)], row["island"])
            except ValueError as err:
                raise BadInput(f"the tuned child: {err}") from None
            say(f"stored the tuned child as program {child_id}; scoring it with campaign "
                f"{config.name!r}'s cascade (suite {resolved_suite(config)})")
            pending = len(campaign.archive.pending(campaign.campaign_id))
            campaign.run(max_evals=campaign.state["evaluations"] + pending, minutes=None)
            child = campaign.archive.program(child_id)
        finally:
            campaign.close()
        data["child"] = {"id": child_id, "outcome": child["outcome"], "score": child["score"],
                         "ci": [child["ci_low"], child["ci_high"]], "parent_score": row["score"]}
    if output == "json":
        click.echo(json.dumps(data, indent=2, allow_nan=False, default=str))
        return
    for change in changes:
        click.echo(f"  {change['name']}: {change['before']:.4g} -> {change['after']:.4g}")
    if no_store:
        sys.stdout.write(result.child_source)
    elif data["child"] is not None:
        child = data["child"]
        click.echo(f"program {child['id']} ({child['outcome']}): score {fmt.score(child['score'])} "
                   f"[{fmt.score(child['ci'][0])}, {fmt.score(child['ci'][1])}], parent {program_id} "
                   f"{fmt.score(row['score'])}")
