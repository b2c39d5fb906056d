"""``evosearch doctor``: which sandbox this machine gives candidates, what is missing, how to get it."""

from __future__ import annotations

import json
import os
import sys

import click

from evosearch.cli.options import BadInput, output_options
from evosearch.cli.render import markup

NOBODY = 65534  # the uid a diagnosis child drops to, as a namespaces-mode job drops to one of its own


@click.command("doctor")
@click.option("--sandbox", "requested", default=None,
              help="Check this mode (auto, bubblewrap, namespaces, rlimits) instead of the default.")
@click.option("--no-live", is_flag=True, help="Skip the live check (a real job trying what a hostile program would).")
@click.option("--strict", is_flag=True, help="Exit 1 unless a strong mode (bubblewrap or namespaces) is in force.")
@click.option("--gpu", "check_gpu", is_flag=True,
              help="Start CUDA inside a sandboxed job even where no GPU is seen (it is done whenever one is), and "
              "where it fails in namespaces mode, find the layer that stops it.")
@output_options(formats=("table", "json"),
                json_help="one object: the mode, whether it is strong, each layer, the live check.")
def doctor_command(requested: str | None, no_live: bool, strict: bool, check_gpu: bool, output: str) -> None:
    """Show the sandbox mode in force, each layer, and how to get the missing ones.

    On a machine with an NVIDIA GPU (or with --gpu) it also starts CUDA inside a sandboxed
    job, as a GPU training job would, and says whether that works in this mode.
    """
    from evosearch import sandbox
    from evosearch.sandbox import Limits, gpu, modes, run_job
    from evosearch.sandbox.selfcheck import SelfCheck

    try:
        mode = sandbox.configure(requested) if requested else modes.current()
    except sandbox.SandboxUnavailable as err:
        raise BadInput(str(err)) from err  # exit 2, as run and eval for the same mistake
    live = gpu_report = None
    if not no_live:
        job = run_job(SelfCheck(), Limits(wall_s=60))
        live = job.result if job.status == "ok" else {"error": job.error.get("message", job.status)}
    if check_gpu or (not no_live and gpu.present()):
        gpu_report = gpu_check(mode)
    sandbox.shutdown()
    if output == "json":
        click.echo(json.dumps({"mode": mode.name, "strong": mode.strong, "summary": mode.summary(),
                               "layers": [vars(layer) for layer in mode.layers], "live": live, "gpu": gpu_report}))
    else:
        _print(mode, live)
        if gpu_report is not None:
            _print_gpu(gpu_report)
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


def gpu_check(mode) -> dict:
    """Start CUDA in a job of ``mode``; where that fails in namespaces mode, the layer that stops it.

    The diagnosis forks children from this process, which has not started CUDA (it must not:
    the children could not), applies the mode's layers one at a time and starts CUDA after each.
    """
    import tempfile

    from evosearch.sandbox import gpu
    from evosearch.sandbox.launch import drops_uid

    device = "cuda"
    why, found = gpu.job_check(mode, device)
    report: dict = {"device": device, "starts": why is None, "found": found, "error": why,
                    "obstacles": gpu.obstacles(drops_uid=drops_uid() and mode.name != "rlimits"), "diagnosis": None}
    if why is not None and mode.name == "namespaces" and os.geteuid() == 0:
        with tempfile.TemporaryDirectory(prefix="evosearch-gpu-") as scratch:
            os.chown(scratch, NOBODY, NOBODY)
            diagnosis = gpu.diagnose(device, gpu.namespace_steps(scratch, NOBODY))
        report["diagnosis"] = {"culprit": diagnosis.culprit, "summary": diagnosis.describe(),
                               "steps": [{"layer": step, "error": err} for step, err in diagnosis.results]}
    return report


def _print_gpu(report: dict) -> None:
    from rich.console import Console

    console = Console()
    if report["starts"]:
        found = report["found"]
        console.print(f"GPU: CUDA starts inside a sandboxed job ({markup(found.get('name', '?'))}, CUDA "
                      f"{markup(found.get('cuda') or '?')}, {found.get('start_s', '?')} s)")
    else:
        console.print(f"[red]GPU: CUDA does not start inside a sandboxed job:[/] {markup(report['error'] or '?')}")
        console.print("  campaigns with --sandbox auto fall back to the strongest mode where it starts, and say so")
    for obstacle in report["obstacles"]:
        console.print(f"  [yellow]obstacle:[/] {markup(obstacle)}")
    if report["diagnosis"]:
        console.print(f"  diagnosis (namespaces mode, one layer at a time): {markup(report['diagnosis']['summary'])}")
