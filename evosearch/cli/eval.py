"""Command line: parses, calls the library, prints. Exit 0 ok, 1 candidate failed, 2 bad usage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from evosearch.cli_campaign import archive_group, llm_group, run_command, status_command
from evosearch.cli_doctor import doctor_command
from evosearch.cli_export import export_command
from evosearch.cli_report import report_command, serve_command
from evosearch.envs.suites import SuiteError, available, load_suite


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="evosearch")
def main() -> None:
    """evosearch: search for reinforcement-learning algorithms written as programs."""


def _print_eval_table(result, program_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.tasks:
        table = Table(title=f"{program_name} on {result.suite}")
        for col, justify in (("task", "left"), ("mean return", "right"), ("normalised", "right"),
                             ("95% CI", "right"), ("seeds", "right"), ("job s", "right")):
            table.add_column(col, justify=justify)
        rows = list(result.tasks.values()) + list(result.held_out.values())
        for t in rows:
            name = t.env_id + (" (held-out)" if t.env_id in result.held_out else "")
            table.add_row(name, f"{t.mean_return:.1f}", f"{t.normalized_mean:.3f}",
                          f"[{t.ci[0]:.3f}, {t.ci[1]:.3f}]", str(len(t.returns)), f"{t.train_wall_s:.0f}")
        console.print(table)
    style = "green" if result.ok else "red"
    console.print(f"outcome [bold {style}]{result.outcome}[/] at stage [bold]{result.stage}[/]"
                  f"   fingerprint {result.fingerprint or '-'}   wall {result.wall_s:.1f} s"
                  f"   cpu {result.cpu_s:.1f} s   peak memory {result.peak_rss_mb:.0f} MiB")
    if result.score is not None:
        console.print(f"score ({result.fitness.upper()} of normalised returns over tasks x seeds): "
                      f"[bold]{result.score:.3f}[/]  95% CI [{result.ci[0]:.3f}, {result.ci[1]:.3f}]"
                      f"   AUC {result.auc:.3f}")
    if result.error:
        console.print(f"[red]error:[/] {result.error}", markup=True, highlight=False)
        if result.output_tail.strip():
            console.print(result.output_tail.strip()[-1500:], markup=False, highlight=False)


@main.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--suite", default=None, help="Suite name or YAML path (default: classic-quick for a rule, "
              "policies for a policy).")
@click.option("--seeds", type=click.IntRange(1, 1024), default=None, help="Seeds per task (default: the suite's).")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Parallel training jobs (default: cores).")
@click.option("--no-hurdle", is_flag=True, help="Skip the hurdle stage.")
@click.option("--held-out", is_flag=True, help="Also train and score the suite's held-out tasks (report only).")
@click.option("--fitness", type=click.Choice(["iqm", "auc"]), default="iqm", show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Seconds per job.")
@click.option("--memory-mb", type=click.IntRange(700, 1 << 20), default=4096, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where training runs; auto: the GPU for torch-native tasks if there is one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def eval_command(file: Path, suite: str | None, seeds: int | None, workers: int | None, no_hurdle: bool, held_out: bool,
                 fitness: str, timeout_s: float, memory_mb: int, device: str, as_json: bool) -> None:
    """Score the program FILE on a suite: train a rule (``loss``), or play a policy (``act``)."""
    from evosearch.evaluate import CascadeConfig, Evaluator
    from evosearch.evaluate_policy import POLICY_SUITE, PolicyEvaluator
    from evosearch.program import Program, program_kind

    try:
        source = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise click.UsageError(f"{file} is not UTF-8 text: {err}") from err
    kind = program_kind(source)
    suite = suite or (POLICY_SUITE if kind == "policy" else "classic-quick")
    try:
        loaded = load_suite(suite)
    except SuiteError as err:
        raise click.UsageError(str(err)) from err
    cfg = CascadeConfig(suite=suite, seeds=seeds, hurdle=not no_hurdle, held_out=held_out, fitness=fitness,
                        task_timeout_s=timeout_s, memory_mb=memory_mb, device=device,
                        **({"workers": workers} if workers else {}))
    if loaded.kind != kind:
        raise click.UsageError(f"{file.name} is a {kind} program but suite {loaded.name!r} scores {loaded.kind}s")
    program = Program(source=source, kind=kind, name=str(file))
    from evosearch.devices import DeviceError
    from evosearch.sandbox import SandboxUnavailable

    try:
        evaluator = PolicyEvaluator(cfg, loaded) if kind == "policy" else Evaluator(cfg, loaded)
    except (SuiteError, SandboxUnavailable, DeviceError) as err:
        raise click.UsageError(str(err)) from err
    result = evaluator.evaluate(program)
    if as_json:
        click.echo(json.dumps(result.to_dict(), allow_nan=False))
    else:
        _print_eval_table(result, file.name)
    sys.exit(0 if result.ok else 1)


@main.group()
def suite() -> None:
    """List, show and calibrate suites."""


@suite.command("list")
@click.option("--json", "as_json", is_flag=True)
def suite_list(as_json: bool) -> None:
    """List the suites that ship with evosearch."""
    rows = []
    for name in available():
        s = load_suite(name)
        rows.append({"name": name, "tasks": [t.env_id for t in s.tasks], "held_out": [t.env_id for t in s.held_out],
                     "seeds": s.seeds, "calibrated": all(t.env_id in s.calibration for t in s.tasks)})
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['name']:<16} tasks: {', '.join(r['tasks'])}; held-out: {', '.join(r['held_out'])}; "
                   f"{r['seeds']} seeds; {'calibrated' if r['calibrated'] else 'NOT calibrated'}")


@suite.command("show")
@click.argument("name")
def suite_show(name: str) -> None:
    """Show a suite's tasks and calibration."""
    try:
        s = load_suite(name)
    except SuiteError as err:
        raise click.UsageError(str(err)) from err
    click.echo(f"{s.name}: {s.description}")
    click.echo(f"seeds {s.seeds}, eval episodes {s.eval_episodes}; hurdle {s.hurdle.env_id} "
               f"{s.hurdle.total_steps} steps x {s.hurdle_seeds} seeds")
    if s.calibration_info:
        click.echo(f"calibrated {s.calibration_info.get('measured')} on {s.calibration_info.get('machine')}")
    for t in s.tasks + s.held_out:
        cal = s.calibration.get(t.env_id)
        kind = "held-out" if t in s.held_out else "task"
        ref = f"random {cal.r_random:.1f}, PPO-clip {cal.r_ref:.1f}" if cal else "not calibrated"
        backend = t.backend if t.backend != "auto" else f"auto: {_auto_backends(t.env_id)}"
        click.echo(f"  {kind:<8} {t.env_id:<24} {t.total_steps:>8} steps  {ref}  (env backend {backend})")


def _auto_backends(env_id: str) -> str:
    from evosearch.envs.backend import resolve_backend

    cpu, gpu = resolve_backend(env_id, "auto", "cpu"), resolve_backend(env_id, "auto", "cuda")
    return cpu if cpu == gpu else f"{cpu} on CPU, {gpu} on GPU"


@suite.command("calibrate")
@click.argument("name")
def suite_calibrate(name: str) -> None:
    """Measure random and PPO-clip returns for every task of suite NAME and store them."""
    from evosearch.envs.calibrate import calibrate

    try:
        s = load_suite(name)
    except SuiteError as err:
        raise click.UsageError(str(err)) from err
    calibrate(s, log=click.echo)


main.add_command(run_command)
main.add_command(status_command)
main.add_command(archive_group)
main.add_command(llm_group)
main.add_command(export_command)
main.add_command(report_command)
main.add_command(serve_command)
main.add_command(doctor_command)

if __name__ == "__main__":
    main()
