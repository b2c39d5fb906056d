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
@click.option("--ray-address", metavar="ADDRESS", default=None,
              help="Run the same check on every node of this Ray cluster (auto, HOST:PORT or ray://HOST:PORT), "
              "where a campaign with --executor ray sandboxes its candidates; needs `pip install 'evosearch[ray]'`.")
@output_options(formats=("table", "json"),
                json_help="one object: the mode, whether it is strong, each layer, the live check "
                "(with --ray-address: an array, one such object per node, with its node and hostname).")
def doctor_command(requested: str | None, no_live: bool, strict: bool, check_gpu: bool, ray_address: str | None,
                   output: str) -> None:
    """Show the sandbox mode in force, each layer, and how to get the missing ones.

    On a machine with an NVIDIA GPU (or with --gpu) it also starts CUDA inside a sandboxed
    job, as a GPU training job would, and says whether that works in this mode. With
    --ray-address it runs on each node of a Ray cluster and reports every one.
    """
    from evosearch import sandbox

    if ray_address is not None:
        from evosearch.executor import ExecutorError
        from evosearch.executor.nodes import doctor_on_nodes

        try:
            reports = doctor_on_nodes(ray_address, requested=requested, live=not no_live, check_gpu=check_gpu)
        except ExecutorError as err:
            raise BadInput(str(err)) from err
    else:
        try:
            reports = [diagnose(requested, live=not no_live, check_gpu=check_gpu)]
        except sandbox.SandboxUnavailable as err:
            raise BadInput(str(err)) from err  # exit 2, as run and eval for the same mistake
    if output == "json":
        click.echo(json.dumps(reports if ray_address is not None else reports[0]))
    else:
        for report in reports:
            if "node" in report:
                click.echo(f"node {report['node']} ({report['hostname']}):")
            if "error" in report:  # a node where the check itself failed (the sandbox mode asked for is missing)
                click.echo(f"  {report['error']}")
                continue
            _print(report)
            if report["gpu"] is not None:
                _print_gpu(report["gpu"])
    sys.exit(1 if strict and not all(r.get("strong") for r in reports) else 0)


def diagnose(requested: str | None, *, live: bool = True, check_gpu: bool = False) -> dict:
    """The doctor's report on this machine: the mode, each layer, the live check, CUDA in a job.

    Raises :class:`~evosearch.sandbox.SandboxUnavailable` when ``requested`` cannot be had here.
    """
    from evosearch import sandbox
    from evosearch.sandbox import Limits, gpu, modes, run_job
    from evosearch.sandbox.selfcheck import SelfCheck

    mode = sandbox.configure(requested) if requested else modes.current()
    checked = gpu_report = None
    if live:
        job = run_job(SelfCheck(), Limits(wall_s=60))
        checked = job.result if job.status == "ok" else {"error": job.error.get("message", job.status)}
    if check_gpu or (live and gpu.present()):
        gpu_report = gpu_check(mode)
    sandbox.shutdown()
    return {"mode": mode.name, "strong": mode.strong, "summary": mode.summary(),
            "layers": [vars(layer) for layer in mode.layers], "live": checked, "gpu": gpu_report}


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    live = report["live"]
    verdict = "[green]strong[/]" if report["strong"] else "[red]weak: candidates can reach this machine[/]"
    console.print(f"sandbox mode: [bold]{report['mode']}[/] ({verdict})\n{markup(report['summary'])}")
    table = Table(show_header=True, header_style="bold")
    for column in ("layer", "", "what it does here", "how to get it"):
        table.add_column(column)
    for layer in report["layers"]:
        mark = "[green]yes[/]" if layer["active"] else "[red]no[/]"
        table.add_row(markup(layer["name"]), mark, markup(layer["detail"]), markup(layer["hint"]))
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
