"""Figures of a campaign archive for papers and slides: ``evosearch plot DB -o DIR``.

The web report is for exploring; these are files to put in a paper, a README or a slide, so
they show what an RL reader checks first: how the search progressed (best and QD score,
coverage), whether a program learns on every seed or only on average (per-seed learning
curves, not just a mean line), and how the chosen programs compare with the seed baselines
under rliable's aggregate (IQM with a stratified bootstrap CI, from :mod:`evosearch.stats`).

Everything is read through the archive's read methods and :mod:`evosearch.browse`. Figures
are built on :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so nothing opens a
window, no global backend state is touched, and PNGs are drawn by Agg on any headless machine.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from evosearch import browse, stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from evosearch.archive.store import Archive

FORMATS = ("png", "svg")
#: The figure files ``write_figures`` writes, by name (without the format's suffix).
FIGURES = ("progress", "coverage", "curves", "aggregate")
DPI = 150


class PlotError(ValueError):
    """A figure the archive cannot give: an unknown program, a program of another campaign."""


@dataclass
class Chosen:
    """A program shown in the figures, and the label a reader tells it by."""

    id: int
    label: str
    seed: bool


@dataclass
class TaskCurves:
    """One program's learning curves on one task: a list of returns per training seed."""

    task: str
    held_out: bool
    steps: list[float] | None
    seeds: list[list[float]] = field(default_factory=list)


# -- what to show ------------------------------------------------------------------------------


def _label(row: sqlite3.Row, best_id: int | None) -> str:
    """``#7 best (mutate)`` or ``#1 seed a2c``: the id links the figure to ``evosearch archive show``."""
    if row["operator"] == "seed":
        name = (row["note"] or "").removeprefix("seed ").removesuffix(".py") or "seed"
        return f"#{row['id']} seed {name}"
    what = "best" if row["id"] == best_id else "program"
    return f"#{row['id']} {what} ({row['operator']})"


def choose_programs(archive: Archive, campaign_id: int, ids: list[int] | None = None) -> list[Chosen]:
    """The programs to plot: ``ids`` if given, else the campaign's best; the seeds always (the baselines).

    Seeds come last so the chosen programs keep the first colours in every figure.
    """
    best = archive.best_program_id(campaign_id)
    rows = {int(r["id"]): r for r in archive.programs_of(campaign_id)}
    for pid in ids or []:
        if pid not in rows:
            raise PlotError(f"no program {pid} in campaign {campaign_id} of {archive.path}")
    wanted = list(ids) if ids else ([best] if best is not None else [])
    seeds = [pid for pid, r in rows.items() if r["operator"] == "seed" and pid not in wanted]
    return [Chosen(pid, _label(rows[pid], best), rows[pid]["operator"] == "seed") for pid in wanted + seeds]


# -- data --------------------------------------------------------------------------------------


def _curve_steps(archive: Archive, program_id: int) -> dict[str, list]:
    """Training steps of each task's curve points, from the program's metrics (absent in old archives)."""
    row = archive.program(program_id)
    metrics = json.loads(row["metrics"]) if row is not None and row["metrics"] else {}
    out = {}
    for group in ("tasks", "held_out"):
        for task, t in (metrics.get(group) or {}).items():
            if isinstance(t, dict) and isinstance(t.get("curve_steps"), list):
                out[task] = t["curve_steps"]
    return out


def _finite(values: list) -> list[float]:
    return [float(v) if isinstance(v, int | float) and np.isfinite(v) else np.nan for v in values]


def learning_curves(archive: Archive, campaign_id: int, ids: list[int]) -> dict[int, list[TaskCurves]]:
    """Per program, per task (training tasks first), every seed's learning curve."""
    per: dict[tuple[int, bool, str], list[list[float]]] = defaultdict(list)
    wanted = set(ids)
    for r in archive.learning_curves(campaign_id):
        if r["program_id"] in wanted:
            curve = json.loads(r["curve"])
            if isinstance(curve, list) and curve:
                per[(int(r["program_id"]), bool(r["held_out"]), r["task"])].append(_finite(curve))
    out: dict[int, list[TaskCurves]] = defaultdict(list)
    steps = {pid: _curve_steps(archive, pid) for pid in wanted}
    for (pid, held_out, task), seeds in sorted(per.items()):
        known = steps[pid].get(task)
        usable = known if known and all(len(s) == len(known) for s in seeds) else None
        out[pid].append(TaskCurves(task, held_out, usable, seeds))
    return dict(out)


def seed_scores(archive: Archive, program_id: int) -> np.ndarray:
    """A ``[seeds, tasks]`` matrix of normalised scores on the training tasks, as the fitness uses them.

    Only seeds that ran on every task enter, so the matrix is complete (a program stopped by an
    early stage has fewer seeds, and then fewer rows).
    """
    by_task: dict[str, dict[int, float]] = defaultdict(dict)
    for e in archive.evaluations(program_id):
        if not e["held_out"]:
            by_task[e["task"]][int(e["seed"])] = float(e["normalized"])
    if not by_task:
        return np.empty((0, 0))
    common = sorted(set.intersection(*(set(s) for s in by_task.values())))
    return np.array([[by_task[t][s] for t in sorted(by_task)] for s in common], dtype=np.float64)


def aggregate(archive: Archive, chosen: list[Chosen]) -> list[dict]:
    """IQM and its 95% stratified bootstrap CI per program (rliable's definitions, as the fitness computes them)."""
    rows = []
    for c in chosen:
        scores = seed_scores(archive, c.id)
        if scores.size == 0:
            continue
        low, high = stats.stratified_bootstrap_ci(scores, stats.iqm)
        rows.append({"id": c.id, "label": c.label, "seed": c.seed, "iqm": stats.iqm(scores), "ci": (low, high),
                     "runs": scores.shape[0], "tasks": scores.shape[1]})
    return rows


# -- figures -----------------------------------------------------------------------------------


def _metric_events(events: list[dict]) -> list[dict]:
    """Events that carry QD metrics, in order (starts, stops and migrations repeat the last values)."""
    return [e for e in events if e["evaluations"] is not None and e["qd_score"] is not None]


def progress_figure(events: list[dict], title: str) -> Figure:
    """Best score and QD score against evaluations: the two numbers a quality-diversity search reports."""
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    best_ax, qd_ax = fig.subplots(1, 2)
    points = _metric_events(events)
    x = [e["evaluations"] for e in points]
    best_ax.step(x, [np.nan if e["best"] is None else e["best"] for e in points], where="post", color="C0")
    best_ax.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="PPO-clip reference (1.0)")
    best_ax.set(title="best score", xlabel="evaluations", ylabel="IQM of normalised return")
    best_ax.legend(loc="lower right", fontsize="small")
    qd_ax.step(x, [e["qd_score"] for e in points], where="post", color="C1")
    qd_ax.set(title="QD score", xlabel="evaluations", ylabel="sum over cells of (score − offset)")
    for ax in (best_ax, qd_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    return fig


def coverage_figure(events: list[dict], title: str) -> Figure:
    """Share of the MAP-Elites grid filled against evaluations; the axis always reaches the data's top."""
    fig = Figure(figsize=(5, 3.4), layout="constrained")
    ax = fig.subplots()
    points = _metric_events(events)
    values = [100 * (e["coverage"] or 0.0) for e in points]
    ax.step([e["evaluations"] for e in points], values, where="post", color="C2")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=title, xlabel="evaluations", ylabel="coverage (% of grid cells)",
           ylim=(0, max([10.0, *values]) * 1.1))
    return fig


def _draw_task(ax: Axes, chosen: list[Chosen], curves: dict[int, list[TaskCurves]], task: str) -> None:
    """Each program's seeds as thin lines and their mean as a thick one: a seed that never learns stays visible."""
    in_steps = False
    for colour, c in enumerate(chosen):
        tc = next((t for t in curves.get(c.id, []) if t.task == task), None)
        if tc is None:
            continue
        length = max(len(s) for s in tc.seeds)
        x = np.asarray(tc.steps, dtype=float) if tc.steps else np.arange(length)
        in_steps = in_steps or tc.steps is not None
        matrix = np.full((len(tc.seeds), length), np.nan)
        for i, s in enumerate(tc.seeds):
            matrix[i, :len(s)] = s
            ax.plot(x[:len(s)], s, color=f"C{colour}", alpha=0.3, linewidth=0.8)
        with np.errstate(all="ignore"):
            mean = np.nanmean(matrix, axis=0)
        ax.plot(x, mean, color=f"C{colour}", linewidth=2, label=f"{c.label} ({len(tc.seeds)} seeds)")
    ax.set(title=task, xlabel="training steps" if in_steps else "checkpoint", ylabel="episode return")


def curves_figure(chosen: list[Chosen], curves: dict[int, list[TaskCurves]], title: str) -> Figure:
    """One panel per task (held-out tasks marked), every chosen program's per-seed curves in it."""
    tasks: dict[str, bool] = {}
    for pid in (c.id for c in chosen):
        for tc in curves.get(pid, []):
            tasks.setdefault(tc.task, tc.held_out)
    names = sorted(tasks, key=lambda t: (tasks[t], t))
    fig = Figure(figsize=(4.2 * max(len(names), 1), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(names), 1)))
    if not names:
        axes[0].text(0.5, 0.5, "no learning curves recorded", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, task in zip(axes, names, strict=False):
        _draw_task(ax, chosen, curves, task)
        if tasks[task]:
            ax.set_title(f"{task} (held out)")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), fontsize="small")
    fig.suptitle(f"{title}: learning curves (thin: each seed; thick: mean)")
    return fig


def aggregate_figure(rows: list[dict], title: str) -> Figure:
    """rliable's interval plot: IQM as a dot with its 95% CI as a bar, one row per program, seeds in grey."""
    fig = Figure(figsize=(7.5, 1.2 + 0.55 * max(len(rows), 1)), layout="constrained")
    ax = fig.subplots()
    for y, r in enumerate(rows):
        colour = "dimgrey" if r["seed"] else f"C{y}"
        low, high = r["ci"]
        ax.plot([low, high], [y, y], color=colour, linewidth=6, alpha=0.45, solid_capstyle="butt")
        ax.plot([r["iqm"]], [y], "o", color=colour)
        ax.annotate(f"{r['iqm']:.2f} [{low:.2f}, {high:.2f}]", (high, y), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize="small")
    ax.set_yticks(range(len(rows)), [f"{r['label']}\n{r['runs']} runs × {r['tasks']} tasks" for r in rows],
                  fontsize="small")
    ax.set_ylim(len(rows) - 0.5, -0.9)  # top down, with a free row at the top for the reference labels
    for x, name in ((0.0, "random"), (1.0, "PPO-clip")):
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
        ax.annotate(name, (x, 0.99), xycoords=("data", "axes fraction"), xytext=(3, 0), textcoords="offset points",
                    ha="left", va="top", fontsize="x-small", color="grey")
    ax.margins(x=0.3)
    ax.set(xlabel="IQM of normalised score, 95% stratified bootstrap CI",
           title=f"{title}: aggregate over training tasks")
    return fig


# -- all of it ---------------------------------------------------------------------------------


def parse_ids(text: str | None) -> list[int] | None:
    """``"3,17"`` -> ``[3, 17]``; None or empty -> None (the default choice)."""
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise PlotError(f"--programs takes program ids separated by commas, not {text!r}") from err


def figures(archive: Archive, campaign: str | None = None, ids: list[int] | None = None) -> dict[str, Figure]:
    """Every figure of one campaign (``campaign`` by name, or the only one), by file stem."""
    row = browse.pick_campaign(archive, campaign)
    cid, name = int(row["id"]), row["name"]
    chosen = choose_programs(archive, cid, ids)
    events = browse.progress(archive, cid)
    return {
        "progress": progress_figure(events, f"{name}: progress"),
        "coverage": coverage_figure(events, f"{name}: coverage of the grid"),
        "curves": curves_figure(chosen, learning_curves(archive, cid, [c.id for c in chosen]), name),
        "aggregate": aggregate_figure(aggregate(archive, chosen), name),
    }


def write_figures(archive: Archive, out_dir: Path, fmt: str = "png", campaign: str | None = None,
                  ids: list[int] | None = None) -> list[Path]:
    """Write :data:`FIGURES` into ``out_dir`` as ``NAME.png`` or ``NAME.svg``; the paths written.

    SVGs are written without their creation date, so regenerated docs figures diff cleanly.
    """
    if fmt not in FORMATS:
        raise PlotError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    drawn = figures(archive, campaign, ids)  # a wrong campaign or program id fails before the folder exists
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if fmt == "svg" else {}
    written = []
    for name, fig in drawn.items():
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
        written.append(path)
    return written


__all__ = ["FIGURES", "FORMATS", "Chosen", "PlotError", "TaskCurves", "aggregate", "choose_programs", "figures",
           "learning_curves", "parse_ids", "seed_scores", "write_figures"]
