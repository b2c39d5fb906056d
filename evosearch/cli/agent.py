"""``evosearch agent ...``: train a proposer LLM on campaign archives (datasets first).

``agent dataset DB... -o DIR`` writes ``sft.jsonl`` and ``states.jsonl`` (evosearch.agent.dataset)
and prints what it kept and left out. The library does the work; this parses, checks the
names a user gave (one ``Error:`` line, exit 2) and prints.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from evosearch.cli.options import BadInput, find_db, output_options
from evosearch.fmt import terminal_text

SHORT_HELP = "Train a proposer LLM on archives: datasets, reward, SFT/GRPO, serving."


@click.group("agent", short_help=SHORT_HELP)
def agent_group() -> None:
    """Train a proposer LLM on archives: datasets, reward, SFT/GRPO, serving.

    Start with `evosearch agent dataset DB... -o DIR`: supervised pairs (sft.jsonl) and
    step-wise states for reinforcement learning (states.jsonl) from campaign archives.
    """


@agent_group.command("dataset")
@click.argument("dbs", metavar="DB [DB...]", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The directory to write sft.jsonl, states.jsonl and summary.json to (created if needed).")
@click.option("--max-per-parent", type=click.IntRange(min=1), default=3, show_default=True,
              help="At most this many SFT rows share one parent (the best gains).")
@click.option("--min-gain", type=float, default=0.0, show_default=True,
              help="An SFT row needs child score > parent score + this.")
@click.option("--operator-edits", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also write warmup.jsonl: this many AST-operator edits of each state's parent (format "
                   "warm-up for a model new to SEARCH/REPLACE; not evaluated).")
@output_options(formats=("table", "json"), json_help="the summary as one object.")
def dataset_command(dbs: tuple[Path, ...], out: Path, max_per_parent: int, min_gain: float, operator_edits: int,
                    output: str) -> None:
    """Training data for a proposer LLM from campaign archives (TRL's conversational format).

    sft.jsonl: each child that beat its parent, whatever operator made it, as the prompt the
    campaign's LLM proposer would send for the parent and the SEARCH/REPLACE answer that
    gives the child; one row per behaviour (fingerprint), at most --max-per-parent rows per
    parent, no repeated edit. states.jsonl: each program a campaign used as a parent, with
    its prompt at that step, for GRPO. warmup.jsonl (with --operator-edits N): N edits the
    AST operators make of each state's parent, valid but not evaluated, to teach the format.
    Archives are only read.
    """
    from evosearch.agent.dataset import build_datasets

    if math.isnan(min_gain):
        raise BadInput("--min-gain: must be a number, not nan")
    paths = [find_db(db) for db in dbs]  # a missing file: one clear line, before anything is read
    summary = build_datasets(paths, out, max_per_parent=max_per_parent, min_gain=min_gain,
                             operator_edits=operator_edits)
    data = summary.to_dict()
    if output == "json":
        click.echo(json.dumps(data, allow_nan=False))
        return
    _print_summary(data, min_gain)


def _print_summary(data: dict, min_gain: float) -> None:
    """A few lines: the files, their row counts, and what was left out and why."""
    out = Path(data["out"])
    click.echo(f"{terminal_text(str(out / 'sft.jsonl'))}: {data['sft_rows']} rows "
               f"(of {data['improving']} children that beat their parent by more than {min_gain:g}, "
               f"{data['pairs']} parent-child pairs in all)")
    click.echo(f"{terminal_text(str(out / 'states.jsonl'))}: {data['states']} states")
    if data["operator_edits"]:
        click.echo(f"{terminal_text(str(out / 'warmup.jsonl'))}: {data['warmup_rows']} operator edits "
                   f"(up to {data['operator_edits']} per state)")
    click.echo(f"read {data['campaigns']} campaign(s) in {data['databases']} archive(s)")
    if data["skipped"]:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(data["skipped"].items()))
        click.echo(f"skipped: {reasons}")
    for problem in data["problems"]:
        click.echo(f"note: {terminal_text(problem)}", err=True)


def _attach() -> None:
    """The trainers and the server live in modules of their own; they join the group here."""
    from evosearch.cli.agent_serve import serve_command
    from evosearch.cli.agent_train import grpo_command, sft_command

    for command in (sft_command, grpo_command, serve_command):
        agent_group.add_command(command)


_attach()
