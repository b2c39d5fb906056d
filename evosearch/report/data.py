"""Read a campaign archive into one JSON-ready dict: what the web page shows, and nothing it does not.

The page is a static file that must work without a server, so it gets the whole archive it
displays up front, as data (never as markup). One read transaction gives a consistent snapshot
even while a campaign is writing to the same WAL-mode database. What is left out on purpose:
LLM endpoints and prompts (a shared report should not carry them), GP genomes, the RNG state.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import defaultdict
from typing import Any

from evosearch.archive.descriptors import DESCRIPTORS, grid_from_config
from evosearch.archive.store import Archive, dumps
from evosearch.fmt import finite

REPORT_FORMAT = 2  # bump when the shape of the dict changes; the page checks it


def _loads(text: str | None, default: Any = None) -> Any:
    """JSON columns may be NULL, or (in a damaged archive) not JSON; the report shows what it can."""
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _public_config(config: dict) -> dict:
    """The campaign config without LLM endpoints: a report is meant to be shared."""
    public = {k: v for k, v in config.items() if k != "llm"}
    llm = config.get("llm") or {}
    models = [{"label": m.get("name") or m.get("model"), "model": m.get("model")} for m in llm.get("models") or []]
    if models:
        public["llm"] = {"models": models, "cost_cap": llm.get("cost_cap")}
    return public


def _grid(config: dict) -> dict:
    """The MAP-Elites axes as configured; cells are numbered row-major, the last axis fastest."""
    archive = config.get("archive") or {}
    grid = grid_from_config(archive.get("descriptors") or [])
    axes = [{"name": a.name, "min": a.low, "max": a.high, "bins": a.bins, "help": _definition(a.name)}
            for a in grid.axes]
    return {"axes": axes, "islands": int(archive.get("islands") or 1), "qd_offset": archive.get("qd_offset", 0.0),
            "size": grid.size if axes else 0}


def _definition(descriptor: str) -> str:
    """What a descriptor measures, from its function's docstring, so the page's text cannot drift from the code."""
    doc = getattr(DESCRIPTORS.get(descriptor), "__doc__", None) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _program(row: Any) -> dict:
    metrics = _loads(row["metrics"], {}) or {}
    tasks = {}
    for group, held_out in (("tasks", False), ("held_out", True)):
        for env_id, t in (metrics.get(group) or {}).items():
            tasks[env_id] = {"mean_return": t.get("mean_return"), "normalized": t.get("normalized_mean"),
                             "ci": t.get("ci"), "auc": t.get("auc"), "held_out": held_out}
    ok = row["outcome"] == "ok"
    return {
        "id": row["id"], "campaign_id": row["campaign_id"], "kind": row["kind"], "source": row["source"],
        "parent_id": row["parent_id"], "parent_ids": _loads(row["parent_ids"], []) or [],
        "operator": row["operator"], "model": row["model"], "island": row["island"],
        "generation": row["generation"], "note": row["note"] or "", "status": row["status"],
        "outcome": row["outcome"], "stage": row["stage"], "score": row["score"],
        "ci": [row["ci_low"], row["ci_high"]] if row["ci_low"] is not None else None,
        "descriptors": _loads(row["descriptors"], {}) or {}, "tasks": tasks,
        "auc": metrics.get("auc"), "suite": metrics.get("suite"), "fitness": metrics.get("fitness"),
        "duplicate_of": row["duplicate_of"], "error": row["error"] or "",
        # The tail of a failed job's output explains the error; a successful one's is noise.
        "output_tail": "" if ok else (row["output_tail"] or ""),
        "fingerprint": row["fingerprint"], "created": row["created"], "evaluated": row["evaluated"],
        "eval_seq": row["eval_seq"], "wall_s": row["wall_s"], "resources": _resources(row),
    }


def _resources(row: Any) -> dict:
    """What the evaluation cost (stored per program, shown on its page); absent columns read as None."""
    keys = row.keys()
    return {k: finite(row[k]) if k in keys else None for k in ("wall_s", "cpu_s", "peak_rss_mb")}


def _mean_curve(curves: list[list[float | None]]) -> tuple[list[float | None], int]:
    """Point-wise mean over seeds of the values each seed has (a seed cut short still counts where it ran)."""
    length = max((len(c) for c in curves), default=0)
    mean: list[float | None] = []
    for i in range(length):
        values = [v for c in curves if i < len(c) and (v := finite(c[i])) is not None]
        mean.append(round(sum(values) / len(values), 4) if values else None)
    return mean, len(curves)


def _short_tail(steps: list | None) -> bool:
    """Whether the last checkpoint closes an interval under half the one before it.

    Training stops at its step budget, not at a checkpoint, so the last interval can be a few
    hundred steps: its return averages the few (short) episodes that ended there and bends the
    curve into a hook. The page leaves that point out; the stored curve keeps it.
    """
    if not isinstance(steps, list) or len(steps) < 3 or not all(isinstance(s, (int, float)) for s in steps[-3:]):
        return False
    return steps[-1] - steps[-2] < 0.5 * (steps[-2] - steps[-3])


def _curve_entry(task: str, held_out: int, curves: list[list], known: Any) -> dict:
    """One task's curves as the page draws them: the mean, each seed, and whether a short last interval was cut."""
    runs = [[v if (v := finite(x)) is None else round(v, 4) for x in c] for c in curves]
    mean, seeds = _mean_curve(curves)
    steps = known if isinstance(known, list) and len(known) == len(mean) else None
    trimmed = None
    if _short_tail(steps):
        trimmed = steps[-1]
        steps, mean = steps[:-1], mean[:-1]
        runs = [r[:len(mean)] for r in runs]
    return {"task": task, "held_out": bool(held_out), "seeds": seeds, "mean": mean, "runs": runs,
            "steps": steps, "trimmed_step": trimmed}


def _curves(archive: Archive, campaign_id: int, steps: dict[int, dict[str, list]]) -> dict[str, list[dict]]:
    """Program id (as a JSON key) -> per-task learning curves: each seed's, and the mean over seeds."""
    per: dict[tuple[int, str, int], list] = defaultdict(list)
    for r in archive.learning_curves(campaign_id):
        curve = _loads(r["curve"])
        if isinstance(curve, list):
            per[(r["program_id"], r["task"], r["held_out"])].append(curve)
    out: dict[str, list[dict]] = defaultdict(list)
    for (program_id, task, held_out), curves in per.items():
        known = steps.get(program_id, {}).get(task)
        out[str(program_id)].append(_curve_entry(task, held_out, curves, known))
    return dict(out)


def _campaign(archive: Archive, row: Any) -> tuple[dict, list[dict], dict]:
    config = _loads(row["config"], {}) or {}
    state = _loads(row["state"], {}) or {}
    grid = _grid(config)
    cid = row["id"]
    stats = archive.qd_stats(cid, grid["size"], grid["qd_offset"] or 0.0)
    cells = [{"island": c["island"], "cell": c["cell"], "coords": _loads(c["coords"], []),
              "program_id": c["program_id"], "score": c["score"], "updated": c["updated"]}
             for c in archive.cells(cid)]
    events = [{"time": e["time"], "kind": e["kind"], "evaluations": e["evaluations"], "best": e["best"],
               "qd_score": e["qd_score"], "coverage": e["coverage"], "evals_per_hour": e["evals_per_hour"],
               "data": _loads(e["data"], {})} for e in archive.events(cid)]
    rows = archive.programs_of(cid)
    programs = [_program(p) for p in rows]
    steps: dict[int, dict[str, list]] = {}
    for p in rows:
        if p["metrics"] is None:
            continue
        tasks = (_loads(p["metrics"], {}) or {}).get("tasks") or {}
        steps[p["id"]] = {k: t.get("curve_steps") for k, t in tasks.items()}
    campaign = {
        "id": cid, "name": row["name"], "kind": row["kind"], "status": row["status"], "created": row["created"],
        "updated": row["updated"], "config": _public_config(config), "grid": grid, "stats": stats,
        "best_program": archive.best_program_id(cid), "counts": archive.counts(cid),
        "evaluations": state.get("evaluations", 0),
        "max_evals": (state.get("budget") or config.get("budget") or {}).get("max_evals"),
        "duplicates": state.get("duplicates", 0), "llm_spend": archive.llm_spend(cid),
        "cells": cells, "events": events,
    }
    return campaign, programs, _curves(archive, cid, steps)


def build_data(archive: Archive, *, live: bool = False) -> dict:
    """Everything the page shows, from one consistent snapshot of the archive.

    ``live`` tells the page it is served (and may poll ``data.json``); a static report is not.
    """
    with archive.snapshot():  # one consistent state, however the campaign writes meanwhile
        campaigns, programs, curves = [], [], {}
        for row in archive.campaigns():
            campaign, rows, per_program = _campaign(archive, row)
            campaigns.append(campaign)
            programs.extend(rows)
            curves.update(per_program)
        version = _version(archive)
    return {
        "format": REPORT_FORMAT, "database": archive.path.name, "live": live, "version": version,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "campaigns": campaigns, "programs": programs, "curves": curves,
    }


def _version(archive: Archive) -> str:
    return hashlib.sha1(repr(archive.change_marks()).encode()).hexdigest()[:16]


def data_version(archive: Archive) -> str:
    """A short tag that changes whenever the archive does: lets a poll skip rebuilding unchanged data."""
    return _version(archive)


def to_json(data: dict) -> str:
    """Strict JSON (no NaN or infinity: a browser's JSON.parse rejects them); non-finite numbers become null."""
    return dumps(data)
