"""``evosearch eval FILE``: score one program on a suite, as a table or one JSON object."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from evosearch import fmt
from evosearch.cli.options import device_option, output_options, warn_if_weak
from evosearch.cli.render import indented, labelled, markup, plain


def _print_eval_table(result, program_name: str) -> None:
    """The result for people; the error and the output tail are the candidate's text, shown safe."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.tasks:
        table = Table(title=plain(f"{program_name} on {result.suite}"))
        for col, justify in (("task", "left"), ("mean return", "right"), ("normalised", "right"),
                             ("95% CI", "right"), ("seeds", "right"), ("job s", "right")):
            table.add_column(col, justify=justify)
        rows = list(result.tasks.values()) + list(result.held_out.values())
        for t in rows:
            name = t.env_id + (" (held-out)" if t.env_id in result.held_out else "")
            table.add_row(plain(name), fmt.score(t.mean_return, 1), fmt.score(t.normalized_mean), fmt.ci(*t.ci),
                          str(len(t.returns)), fmt.duration(t.train_wall_s))
        console.print(table)
    style = "green" if result.ok else "red"
    console.print(f"outcome [bold {style}]{markup(result.outcome)}[/] at stage [bold]{markup(result.stage)}[/]"
                  f"   fingerprint {markup(result.fingerprint or '-')}   wall {fmt.duration(result.wall_s)}"
                  f"   cpu {fmt.duration(result.cpu_s)}   peak memory {result.peak_rss_mb:.0f} MiB")
    if result.score is not None:
        console.print(f"score ({result.fitness.upper()} of normalised returns over tasks x seeds): "
                      f"[bold]{fmt.score(result.score)}[/]  95% CI {fmt.ci(*result.ci)}"
                      f"   AUC {fmt.score(result.auc)}")
    if result.error:
        console.print(labelled("error:", result.error))
        _print_tail(console, result.output_tail)


def _print_tail(console, tail: str, limit: int = 1500) -> None:
    """The end of the job's traceback and output, indented under a heading: no line of it can pass for ours."""
    tail = tail.strip()
    if not tail:
        return
    cut = len(tail) > limit
    console.print(f"the job's traceback and output{' (last ' + str(limit) + ' characters)' if cut else ''}:",
                  style="dim", markup=False, highlight=False)
    console.print(indented(tail[-limit:]))


@click.command("eval")
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
@device_option(default="auto", help="Where training runs; auto: the GPU for torch-native tasks if there is one.")
@output_options(formats=("table", "json"), json_help="one object: outcome, score, each task.")
def eval_command(file: Path, suite: str | None, seeds: int | None, workers: int | None, no_hurdle: bool, held_out: bool,
                 fitness: str, timeout_s: float, memory_mb: int, device: str, output: str) -> None:
    """Score the program FILE on a suite: train agents with a rule (loss), or play a policy (act)."""
    from evosearch import kinds
    from evosearch.devices import DeviceError
    from evosearch.envs.suites import SuiteError, load_suite
    from evosearch.evaluate import CascadeConfig
    from evosearch.program import Program
    from evosearch.sandbox import SandboxUnavailable, current_mode

    try:
        source = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise click.UsageError(f"{file} is not UTF-8 text: {err}") from err
    kind = kinds.detect(source)
    suite = suite or kind.default_suite
    try:
        loaded = load_suite(suite)
    except SuiteError as err:
        raise click.UsageError(str(err)) from err
    cfg = CascadeConfig(suite=suite, seeds=seeds, hurdle=not no_hurdle, held_out=held_out, fitness=fitness,
                        task_timeout_s=timeout_s, memory_mb=memory_mb, device=device,
                        **({"workers": workers} if workers else {}))
    if loaded.kind != kind.name:
        raise click.UsageError(f"{file.name} is a {kind.name} program but suite {loaded.name!r} scores "
                               f"{loaded.kind}s")
    program = Program(source=source, kind=kind.name, name=str(file))
    try:
        evaluator = kind.evaluator(cfg, loaded)
    except (SuiteError, SandboxUnavailable, DeviceError) as err:
        raise click.UsageError(str(err)) from err
    warn_if_weak(current_mode())  # the evaluator chose the mode; say so before the candidate runs
    result = evaluator.evaluate(program)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), allow_nan=False))
    else:
        _print_eval_table(result, file.name)
    sys.exit(0 if result.ok else 1)
