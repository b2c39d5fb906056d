"""``evosearch doctor``: which sandbox this machine gives candidates, what is missing, how to get it."""

from __future__ import annotations

import json
import sys

import click

from evosearch.cli.options import BadInput, output_options
from evosearch.cli.render import markup


@click.command("doctor")
@click.option("--sandbox", "requested", default=None,
              help="Check this mode (auto, bubblewrap, namespaces, rlimits) instead of the default.")
@click.option("--no-live", is_flag=True, help="Skip the live check (a real job trying what a hostile program would).")
@click.option("--strict", is_flag=True, help="Exit 1 unless a strong mode (bubblewrap or namespaces) is in force.")
@output_options(formats=("table", "json"),
                json_help="one object: the mode, whether it is strong, each layer, the live check.")
def doctor_command(requested: str | None, no_live: bool, strict: bool, output: str) -> None:
    """Show the sandbox mode in force, each layer, and how to get the missing ones."""
    from evosearch import sandbox
    from evosearch.sandbox import Limits, modes, run_job
    from evosearch.sandbox.selfcheck import SelfCheck

    try:
        mode = sandbox.configure(requested) if requested else modes.current()
    except sandbox.SandboxUnavailable as err:
        raise BadInput(str(err)) from err  # exit 2, as run and eval for the same mistake
    live = None
    if not no_live:
        job = run_job(SelfCheck(), Limits(wall_s=60))
        live = job.result if job.status == "ok" else {"error": job.error.get("message", job.status)}
        sandbox.shutdown()
    if output == "json":
        click.echo(json.dumps({"mode": mode.name, "strong": mode.strong, "summary": mode.summary(),
                               "layers": [vars(layer) for layer in mode.layers], "live": live}))
    else:
        _print(mode, live)
    sys.exit(1 if strict and not mode.strong else 0)


def _print(mode, live: dict | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    verdict = "[green]strong[/]" if mode.strong else "[red]weak: candidates can reach this machine[/]"
    console.print(f"sandbox mode: [bold]{mode.name}[/] ({verdict})\n{markup(mode.summary())}")
    table = Table(show_header=True, header_style="bold")
    for column in ("layer", "", "what it does here", "how to get it"):
        table.add_column(column)
    for layer in mode.layers:
        mark = "[green]yes[/]" if layer.active else "[red]no[/]"
        table.add_row(markup(layer.name), mark, markup(layer.detail), markup(layer.hint))
    console.print(table)
    if live is None:
        return
    if "error" in live:
        console.print(f"[red]live check failed:[/] {markup(live['error'])}")
        return
    console.print("live check (a sandboxed job trying what a hostile program would):")
    for key, value in live.items():
        if key == "environment variables":
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = "; ".join(f"{k}: {v}" for k, v in value.items())
        console.print(f"  {markup(key)}: {markup(value)}")  # what a sandboxed job reported
