"""Command line: parses, calls the library, prints. Exit 0 ok, 1 candidate failed, 2 bad usage.

One module per command group; what they share (output formats, the database, the device)
lives in evosearch.cli.options.
"""

from __future__ import annotations

import click

from evosearch.cli.agent import agent_group
from evosearch.cli.archive import archive_group
from evosearch.cli.campaign import run_command, status_command
from evosearch.cli.doctor import doctor_command
from evosearch.cli.eval import eval_command
from evosearch.cli.export import export_command
from evosearch.cli.llm import llm_group
from evosearch.cli.metatune import metatune_command
from evosearch.cli.options import Commands
from evosearch.cli.plot import plot_command
from evosearch.cli.report import report_command, serve_command
from evosearch.cli.suite import suite_group


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="evosearch")
def main() -> None:
    """evosearch: search for reinforcement-learning algorithms written as programs."""


for _command in (eval_command, suite_group, run_command, status_command, archive_group, llm_group, export_command,
                 report_command, serve_command, doctor_command, plot_command, metatune_command, agent_group):
    main.add_command(_command)

__all__ = ["main"]
