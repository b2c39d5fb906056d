"""``evosearch agent sft CONFIG`` and ``evosearch agent grpo CONFIG``: train a proposer's LoRA adapter.

Each reads one YAML config (docs/agent.md lists every key), checks its paths before loading
anything, trains with TRL, and writes the adapter with ``metrics.jsonl`` and ``report.json``
beside it. Without the ``agent`` extra they say what to install.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from evosearch.cli.options import BadInput, output_options


def _run(config: Path, grpo: bool, output: str) -> None:
    from evosearch.agent.train import (
        AgentConfigError,
        GrpoSettings,
        SftSettings,
        load_settings,
        require_extra,
        train_grpo,
        train_sft,
    )

    try:
        require_extra()
        settings = load_settings(config, GrpoSettings if grpo else SftSettings)
    except AgentConfigError as err:
        raise BadInput(str(err)) from None
    report = train_grpo(settings) if grpo else train_sft(settings)
    if output == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    last = report.metrics[-2] if len(report.metrics) > 1 else (report.metrics[-1] if report.metrics else {})
    shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k in (
        "loss", "reward", "reward_std", "kl", "mean_token_accuracy", "learning_rate"))
    click.echo(f"{report.steps} steps in {report.wall_s:.0f} s; last logged: {shown or '-'}")
    click.echo(f"adapter and metrics in {report.output}")


@click.command("sft", short_help="Supervised fine-tuning of a LoRA adapter on sft.jsonl.")
@click.argument("config", type=click.Path(path_type=Path))
@output_options(formats=("table", "json"))
def sft_command(config: Path, output: str) -> None:
    """Train a LoRA adapter on an archive's good edits (TRL's SFTTrainer), as CONFIG says."""
    _run(config, grpo=False, output=output)


@click.command("grpo", short_help="Step-wise GRPO with the evaluator's reward on states.jsonl.")
@click.argument("config", type=click.Path(path_type=Path))
@output_options(formats=("table", "json"))
def grpo_command(config: Path, output: str) -> None:
    """Train a LoRA adapter by GRPO (TRL's GRPOTrainer), rewarded by the sandboxed evaluator, as CONFIG says."""
    _run(config, grpo=True, output=output)
