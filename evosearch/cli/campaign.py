"""``evosearch run CONFIG`` (start or resume a campaign) and ``evosearch status`` (how its campaigns stand)."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import click

from evosearch.cli.options import (
    BadInput,
    db_option,
    device_option,
    emit,
    note_database,
    open_archive,
    output_options,
    warn_if_weak,
)
from evosearch.cli.render import echo
from evosearch.fmt import score, terminal_text

ALLOW_WEAK_FLAG = "--allow-weak-sandbox"
#: `run`'s exit status when the campaign paused because evaluations kept failing outside the programs' code.
EXIT_PAUSED = 3


@click.command("run")
@click.argument("config_file", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Database to create or resume (default: the config's).")
@click.option("--max-evals", type=click.IntRange(1), help="Stop when the campaign has this many evaluations.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), help="Stop this run after M minutes.")
@click.option("--parallel", type=click.IntRange(1, 256),
              help="Evaluations at once (default: the config's; with the Ray executor: executor.max_in_flight).")
@device_option(default=None, help="Where training runs (default: the config's evaluation.device, else auto: the GPU "
              "for torch-native tasks if there is one). With cuda, every parallel evaluation shares the GPU; cuda:N "
              "picks one.")
@click.option(ALLOW_WEAK_FLAG, "allow_weak_sandbox", is_flag=True,
              help="Run an LLM campaign even in a weak sandbox mode (rlimits), where candidate programs can read "
              "the API keys in this process's environment. Without it such a campaign refuses to start.")
@click.option("--executor", "executor_kind", type=click.Choice(["local", "ray"]), default=None,
              help="Where evaluations run: local (this machine, the default) or ray (a Ray cluster's workers; "
              "needs `pip install 'evosearch[ray]'`). Default: the config's executor.kind.")
@click.option("--ray-address", metavar="ADDRESS", default=None,
              help="The Ray cluster to evaluate on: auto (the one `ray start` began on this machine), HOST:PORT, "
              "or ray://HOST:PORT (Ray Client). Implies --executor ray. Default: the config's executor.address, "
              "else Ray started inside this process.")
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also log the progress as TensorBoard scalars into DIR, one point per evaluation "
              "(`tensorboard --logdir DIR` shows them).")
def run_command(config_file: Path, db: Path | None, max_evals: int | None, minutes: float | None,
                parallel: int | None, device: str | None, allow_weak_sandbox: bool, executor_kind: str | None,
                ray_address: str | None, tensorboard_dir: Path | None) -> None:
    """Start the campaign in CONFIG, or resume it: same database, same name.

    Ctrl-C once finishes the evaluations in flight and stops; twice abandons them (they are
    re-run on resume). Progress goes to the terminal, details to a log file beside the database.
    In a weak sandbox mode (rlimits: candidates not isolated) it warns, and a campaign whose
    LLM models use API keys refuses to start unless given --allow-weak-sandbox. With --executor
    ray the evaluations run on a Ray cluster's workers (docs/cluster.md) and the mode is theirs;
    the archive and the search stay in this process.
    """
    from evosearch import devices, sandbox
    from evosearch.campaign import BudgetReached, Campaign
    from evosearch.config import ConfigError, load_config
    from evosearch.executor import ExecutorError
    from evosearch.progress import ProgressView
    from evosearch.sandbox import gpu
    from evosearch.tensorboard_log import ProgressScalars, with_scalars

    overrides: dict = {"parallel": parallel} if parallel else {}
    if device:
        overrides["evaluation"] = {"device": device}
    overrides.update(_executor_overrides(executor_kind, ray_address))
    evaluator = None  # a Ray executor's, started here and stopped when the run ends
    try:
        config = load_config(config_file, overrides)
        if config.executor.kind == "ray" and parallel:  # on Ray, the actors set how many run at once
            config = dataclasses.replace(config, executor=dataclasses.replace(config.executor, max_in_flight=parallel))
        if config.executor.kind == "ray":  # the nodes sandbox and train; this process only searches
            evaluator = _start_ray(config)
            mode, where = evaluator.sandbox, _describe_ray(evaluator)
        else:
            mode = sandbox.ensure(config.evaluation.sandbox)
            device_pool = devices.DevicePool(config.evaluation.device)
            if device_pool.gpus:  # the mode GPU jobs start CUDA in, which may be a weaker one (said loudly)
                mode = gpu.sandbox_for_gpu(device_pool.gpus[0], sandbox.requested_for(config.evaluation.sandbox),
                                           warn=lambda message: click.echo(f"WARNING: {message}", err=True)).mode
            where = f"device: {device_pool.describe()}"
        if not allow_weak_sandbox:
            _refuse_keys_in_weak_mode(config, mode)
        note_database(db or config.db_path())  # an archive it cannot open is named in the one-line error
        campaign = Campaign(config, db_path=db, evaluator=evaluator,
                            on_wait=lambda message: click.echo(message, err=True))
    except (ConfigError, sandbox.SandboxUnavailable, devices.DeviceError, ExecutorError) as err:
        if evaluator is not None:
            evaluator.close()
        raise BadInput(str(err)) from err
    except BaseException:
        if evaluator is not None:
            evaluator.close()
        raise
    try:
        scalars = ProgressScalars(tensorboard_dir) if tensorboard_dir else None
    except OSError as err:
        campaign.close()
        if evaluator is not None:
            evaluator.close()
        raise BadInput(f"cannot write TensorBoard logs to {tensorboard_dir}: {err.strerror or err}") from err
    log_path = campaign.db_path.with_suffix(".log")
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(LogFormatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("evosearch")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    echo(f"campaign {config.name!r}: database {campaign.db_path}, log {log_path}", err=True)
    click.echo(f"sandbox: {mode.summary()}", err=True)
    warn_if_weak(mode)
    click.echo(where, err=True)
    try:
        with ProgressView() as view:
            summary = campaign.run(max_evals=max_evals, minutes=minutes, on_progress=with_scalars(view, scalars))
    except BudgetReached as err:
        click.echo(str(err), err=True)
        return
    except KeyboardInterrupt:
        click.echo("abandoned the running evaluations; run the same command to resume", err=True)
        sys.exit(130)
    finally:
        campaign.close()
        if evaluator is not None:
            evaluator.close()
        logger.removeHandler(handler)
        handler.close()
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()))
    echo(f"stopped: {summary.stop_reason}\n"
         f"evaluations {summary.evaluations} ({summary.evaluated_this_run} this run); outcomes: {outcomes}\n"
         f"best score {score(summary.best)} (program {summary.best_program or '-'}); QD score "
         f"{score(summary.qd_score)}; coverage {100 * summary.coverage:.1f}%\n"
         f"browse: evosearch archive best --db {campaign.db_path}")
    if summary.paused:  # the machine, not a program, failed: say so where scripts look
        sys.exit(EXIT_PAUSED)


def _executor_overrides(kind: str | None, address: str | None) -> dict:
    """The config override for ``--executor``/``--ray-address``: an address means Ray."""
    if address is not None and kind == "local":
        raise BadInput("--ray-address names a Ray cluster; it cannot go with --executor local")
    section = {"kind": "ray" if address is not None else kind} if (kind or address) else {}
    if address is not None:
        section["address"] = address
    return {"executor": section} if section else {}


def _start_ray(config):
    """The started Ray executor for ``config``; an :class:`ExecutorError` says what is missing."""
    from evosearch.executor import ray_evaluator

    click.echo(f"executor: ray, connecting to {config.executor.address or 'a Ray instance in this process'} and "
               "starting the evaluation workers...", err=True)
    return ray_evaluator(config)


def _describe_ray(evaluator) -> str:
    """One line on where a Ray executor evaluates: address, nodes, slots, and their sandboxes."""
    info = evaluator.describe()
    nodes = "; ".join(f"{n['node']} ({n['hostname']}): {n['slots']} slots, sandbox {n['sandbox']}"
                      for n in info["nodes"])
    return (f"executor: ray at {info['address']}: {info['slots']} evaluations at once ({info['cpus_per_evaluation']:g} "
            f"CPUs, {info['gpus_per_evaluation']:g} GPUs each) on {len(info['nodes'])} node(s) of "
            f"{info['cluster']['nodes']}: {nodes}")


class LogFormatter(logging.Formatter):
    """The campaign log's lines, made safe for a terminal: people read the log with tail -f and cat,
    and its lines quote candidates' errors and LLM endpoints' messages. A message stays on its own
    line (a line break in a quoted error cannot forge the next entry); a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return terminal_text(super().formatMessage(record))

    def formatException(self, ei) -> str:
        return terminal_text(super().formatException(ei), multiline=True)

    def formatStack(self, stack_info: str) -> str:
        return terminal_text(super().formatStack(stack_info), multiline=True)


def _refuse_keys_in_weak_mode(config, mode) -> None:
    """Stop before anything runs when candidates could read this campaign's LLM keys (a weak mode).

    In ``rlimits`` mode a job can read evosearch's own environment (``/proc/<pid>/environ``),
    where the keys named by ``llm.models[].api_key_env`` are; a candidate that prints one puts it
    in the archive, and in the feedback the next prompts send out. The user may still choose to
    (a machine of their own, a key with a small budget): ``--allow-weak-sandbox``.
    """
    keys = sorted({m.api_key_env for m in config.llm.models if m.api_key_env})
    if mode.strong or not keys:
        return
    several = len(keys) > 1
    raise BadInput(
        f"refusing to start: the sandbox mode is {mode.name} (weak: candidates are not isolated) and this "
        f"campaign's LLM API key{'s' if several else ''} ({', '.join('$' + k for k in keys)}) would be readable "
        "by every candidate program (in this process's environment, /proc/<pid>/environ): a candidate could copy "
        f"{'them' if several else 'it'} into its output, which the archive stores and the LLM prompts quote. "
        f"Install bubblewrap for a strong sandbox (`evosearch doctor` shows how), or pass {ALLOW_WEAK_FLAG} to "
        "run anyway.")


# -- status --------------------------------------------------------------------------------------


def _llm_share(config: dict, state: dict) -> dict:
    """The share of proposals the campaign's language models made, beside the configured target.

    None where no model is configured (the share means nothing there) or no proposal was made yet.
    """
    llm = config.get("llm") or {}
    target = llm.get("share") if llm.get("models") else None
    return {"llm_share_target": target, "llm_share": state.get("llm_share") if target is not None else None,
            "proposal_mix": state.get("proposal_mix", {}) if target is not None else {}}


def _executor(config: dict, state: dict, status: str) -> dict:
    """Where the campaign evaluates: its configured executor and, for Ray, the last snapshot its run stored.

    The snapshot (nodes, evaluations in flight) is written by the running campaign every few
    seconds; work in flight is shown only while the campaign says it is running.
    """
    configured = config.get("executor") or {"kind": "local"}  # archives from before executors ran locally
    snapshot = state.get("executor") or {}
    if configured.get("kind") != "ray" and not snapshot:
        return {"kind": "local", "parallel": config.get("parallel")}
    return {"kind": "ray", "address": snapshot.get("address") or configured.get("address") or "local",
            "slots": snapshot.get("slots"), "cluster": snapshot.get("cluster"), "nodes": snapshot.get("nodes", []),
            "in_flight": snapshot.get("in_flight", []) if status == "running" else [],
            "requeued": state.get("requeued", 0), "lost": snapshot.get("lost")}


def _executor_lines(ex: dict) -> str:
    """The status lines of a Ray executor: address, nodes, work in flight, restarted evaluations."""
    cluster = ex["cluster"] or {}
    lines = [f"  executor: ray at {terminal_text(ex['address'])}; {ex['slots'] or '-'} evaluations at once; cluster "
             f"{cluster.get('nodes', '-')} node(s), {cluster.get('cpus', 0):g} CPUs, {cluster.get('gpus', 0):g} GPUs; "
             f"{ex['requeued']} evaluation(s) restarted after a worker died"]
    for node in ex["nodes"]:
        lines.append(f"    node {terminal_text(node['node'])} ({terminal_text(node['hostname'])}): {node['slots']} "
                     f"slot(s), sandbox {terminal_text(node['sandbox'])}")
    if ex["in_flight"]:
        lines.append("  in flight: " + ", ".join(
            f"{terminal_text(w['program'])} on {terminal_text(w['node'])} (attempt {w['attempt']}, since {w['since']})"
            for w in ex["in_flight"]))
    if ex["lost"]:
        lines.append(f"  cluster lost: {terminal_text(ex['lost'])}")
    return "\n".join(lines)


@click.command("status")
@db_option
@output_options(json_help="one array, an object per campaign.",
                csv_help="one row per campaign (outcomes and LLM spend as JSON text).")
def status_command(db: Path | None, output: str) -> None:
    """Campaigns in the database: state, evaluations, best, QD score, coverage, outcomes."""
    from evosearch.browse import grid_of

    archive = open_archive(db)
    rows = []
    for c in archive.campaigns():
        config, state = json.loads(c["config"]), json.loads(c["state"])
        grid_size = grid_of(config).size
        stats = archive.qd_stats(c["id"], grid_size, config["archive"]["qd_offset"])
        counts = archive.counts(c["id"])
        last = archive.last_event(c["id"])
        rows.append({
            "campaign": c["name"], "status": c["status"], "evaluations": state.get("evaluations", 0),
            "max_evals": state.get("budget", config["budget"])["max_evals"], "pending": counts.pop("pending", 0),
            "best": stats["best"], "qd_score": stats["qd_score"], "coverage": stats["coverage"],
            "cells": stats["cells"], "grid_cells": grid_size, "islands": config["archive"]["islands"],
            "outcomes": counts, "duplicates": state.get("duplicates", 0),
            "evals_per_hour": last["evals_per_hour"] if last else None, "updated": c["updated"],
            "llm_spend": archive.llm_spend(c["id"]), "llm_cost_cap": (config.get("llm") or {}).get("cost_cap"),
            **_llm_share(config, state), "executor": _executor(config, state, c["status"]),
        })

    def table(rows: list[dict]) -> None:
        if not rows:  # an archive whose campaign never got going: say so, silence reads as a broken command
            echo(f"no campaigns in {archive.path}")
        for r in rows:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
            rate = f"{r['evals_per_hour']:.0f}/h" if r["evals_per_hour"] else "-"
            name = terminal_text(r["campaign"])  # one line: a name from elsewhere cannot start a forged one
            echo(f"{name}  [{r['status']}]  evaluations {r['evaluations']}/{r['max_evals'] or '-'}"
                 f" ({r['pending']} pending)  best {score(r['best'])}  QD {score(r['qd_score'])}  coverage "
                 f"{100 * r['coverage']:.1f}% ({r['cells']}/{r['grid_cells']} cells, {r['islands']} islands)"
                 f"  rate {rate}\n  outcomes: {outcomes or '-'}; updated {r['updated']}")
            if r["llm_share_target"] is not None:
                mix = r["proposal_mix"]
                realised = (f"{100 * r['llm_share']:.0f}% of proposals ({mix.get('llm', 0)} of "
                            f"{mix.get('llm', 0) + mix.get('offline', 0)})" if r["llm_share"] is not None else "-")
                echo(f"  LLM share: {realised}; target {100 * r['llm_share_target']:.0f}%")
            if r["llm_spend"]:
                cap = f" of ${r['llm_cost_cap']:.2f}" if r["llm_cost_cap"] is not None else ""
                echo(f"  LLM spend ${sum(r['llm_spend'].values()):.4f}{cap}: "
                     + ", ".join(f"{terminal_text(k)} ${v:.4f}" for k, v in r["llm_spend"].items()))
            if r["executor"]["kind"] == "ray":
                echo(_executor_lines(r["executor"]))

    emit(rows, output, table)
