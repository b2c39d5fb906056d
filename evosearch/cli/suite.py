"""``evosearch suite list|show|calibrate``: the suites that ship with evosearch, and their calibration."""

from __future__ import annotations

from pathlib import Path

import click

from evosearch.cli.options import device_option, emit, emit_object, load_suite, output_options
from evosearch.cli.render import echo


@click.group("suite")
def suite_group() -> None:
    """List, show and calibrate suites."""


@suite_group.command("list")
@output_options(json_help="one array, an object per suite.", csv_help="one row per suite.")
def suite_list(output: str) -> None:
    """List the suites that ship with evosearch."""
    from evosearch.envs.suites import available

    rows = []
    for name in available():
        s = load_suite(name)
        rows.append({"name": name, "tasks": [t.env_id for t in s.tasks], "held_out": [t.env_id for t in s.held_out],
                     "seeds": s.seeds, "calibrated": all(t.env_id in s.calibration for t in s.tasks)})

    def table(rows: list[dict]) -> None:
        for r in rows:
            echo(f"{r['name']:<16} tasks: {', '.join(r['tasks'])}; held-out: {', '.join(r['held_out'])}; "
                 f"{r['seeds']} seeds; {'calibrated' if r['calibrated'] else 'NOT calibrated'}")

    emit(rows, output, table)


@suite_group.command("show")
@click.argument("name")
@output_options(json_help="one object, the tasks included.",
                csv_help="one row per task (held-out tasks too).")
def suite_show(name: str, output: str) -> None:
    """Show a suite's tasks and calibration. NAME: a suite name or a YAML path."""
    s = load_suite(name)
    tasks = []
    sources = _reference_sources(s)
    for t in s.tasks + s.held_out:
        cal = s.calibration.get(t.env_id)
        tasks.append({"env_id": t.env_id, "role": "held-out" if t in s.held_out else "task",
                      "total_steps": t.total_steps, "backend": t.backend, "train": dict(t.train),
                      "backend_resolved": t.backend if t.backend != "auto" else _auto_backends(t.env_id),
                      "r_random": cal.r_random if cal else None, "r_ref": cal.r_ref if cal else None,
                      "reference": sources.get(t.env_id) if cal else None})
    from evosearch.envs.resolution import resolution

    resolved = resolution(s)
    data = {"name": s.name, "kind": s.kind, "description": s.description, "seeds": s.seeds,
            "eval_episodes": s.eval_episodes,
            "hurdle": {"env_id": s.hurdle.env_id, "total_steps": s.hurdle.total_steps, "seeds": s.hurdle_seeds},
            "calibration_info": s.calibration_info or None,
            "resolution": resolved.to_dict() if resolved else None,
            "resolution_text": resolved.describe() if resolved else "resolution: unknown (the calibration "
                               "records no per-seed returns of the reference)",
            "tasks": tasks}
    emit_object(data, tasks, output, _print_suite)


def _print_suite(data: dict) -> None:
    echo(f"{data['name']}: {data['description']}")
    hurdle = data["hurdle"]
    echo(f"seeds {data['seeds']}, eval episodes {data['eval_episodes']}; hurdle {hurdle['env_id']} "
         f"{hurdle['total_steps']} steps x {hurdle['seeds']} seeds")
    info = data["calibration_info"]
    if info:
        echo(f"calibrated {info.get('measured')} on {info.get('machine')}")
    echo(data["resolution_text"])
    for t in data["tasks"]:
        ref = f"random {t['r_random']:.1f}, {_reference(t)}" if t["r_random"] is not None else "not calibrated"
        backend = t["backend"] if t["backend"] != "auto" else f"auto: {t['backend_resolved']}"
        train = "".join(f", {k} {v:g}" if not isinstance(v, bool) else f", {k} {v}" for k, v in t["train"].items())
        echo(f"  {t['role']:<8} {t['env_id']:<24} {t['total_steps']:>8} steps  {ref}  (env backend {backend}{train})")


def _reference_sources(suite) -> dict[str, str]:
    """Where each task's reference return (a normalised 1.0) came from, by env id.

    Not always PPO-clip: where PPO-clip at the suite's budget scores no better than random play
    (MountainCar), calibration falls back to the suite's ``fallback_reference``, and the
    calibration file records that per task ("reference"), the program otherwise. Calibration
    written inline in a suite file records no source.
    """
    import json

    from evosearch.envs.suites import calibration_path

    if not suite.calibration_info:  # inline calibration: the file has no calibration JSON behind it
        return dict.fromkeys(suite.calibration, "set in the suite file")
    path = calibration_path(suite.name)
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    default = str(data.get("reference") or "unknown")
    return {env_id: str(task.get("reference") or default) for env_id, task in (data.get("tasks") or {}).items()}


def _reference(task: dict) -> str:
    """The reference return for the table, named by its source: the program's file name, else the recorded source."""
    source = task["reference"] or "unknown"
    if source.endswith(".py"):
        return f"{Path(source).name} {task['r_ref']:.1f}"
    return f"reference {task['r_ref']:.1f}, from {source}"


def _auto_backends(env_id: str) -> str:
    from evosearch.envs.backend import resolve_backend

    cpu, gpu = resolve_backend(env_id, "auto", "cpu"), resolve_backend(env_id, "auto", "cuda")
    return cpu if cpu == gpu else f"{cpu} on CPU, {gpu} on GPU"


@suite_group.command("calibrate")
@click.argument("name")
@device_option(default="cpu", help="Where PPO-clip trains: cpu, auto, cuda or cuda:N (a GPU-sized suite such as "
               "minatar is calibrated on the GPU it will be evaluated on).")
def suite_calibrate(name: str, device: str) -> None:
    """Measure random and PPO-clip returns for every task of suite NAME and store them."""
    from evosearch.devices import DeviceError
    from evosearch.evaluate.calibrate import calibrate
    from evosearch.sandbox import SandboxUnavailable

    try:
        calibrate(load_suite(name), log=click.echo, device=device)
    except (DeviceError, SandboxUnavailable) as err:
        raise click.UsageError(str(err)) from err
