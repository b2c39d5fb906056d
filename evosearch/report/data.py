"""Read a campaign archive into one JSON-ready dict: what the web page shows, and nothing it does not.

The page is a static file that must work without a server, so it gets the whole archive it
displays up front, as data (never as markup). One read transaction gives a consistent snapshot
even while a campaign is writing to the same WAL-mode database. What is left out on purpose:
LLM endpoints and prompts (a shared report should not carry them), GP genomes, the RNG state.

A served page that watches a campaign asks for a *delta* instead: it says what it holds
(:class:`Held`) and gets the programs, curves and events it lacks, with every campaign's small
summary (counts, cells, statistics) in full. A program row changes only when it is proposed and
when its result is recorded, so "ids above N or results after sequence M" is exact.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evosearch.archive.descriptors import DESCRIPTORS, grid_from_config
from evosearch.archive.store import Archive, dumps
from evosearch.fmt import finite

REPORT_FORMAT = 2  # bump when the shape of the dict changes; the page checks it


@dataclass(frozen=True)
class Held:
    """What a live page already holds, so that a refresh sends only what it lacks.

    ``created`` names each campaign by its creation time: a page left open on an archive that was
    since replaced by another file (same ids, different campaigns) gets the whole data again.
    """

    program_id: int = 0  # the highest program id the page holds
    eval_seqs: Mapping[int, int] = field(default_factory=dict)  # campaign id -> highest eval_seq held
    event_ids: Mapping[int, int] = field(default_factory=dict)  # campaign id -> highest event id held
    created: Mapping[int, str] = field(default_factory=dict)  # campaign id -> its creation time

    @classmethod
    def parse(cls, text: str) -> Held:
        """Read the page's ``since`` parameter; ValueError names what is malformed."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"since is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("since must be a JSON object")
        program_id = raw.get("program_id", 0)
        if not isinstance(program_id, int) or isinstance(program_id, bool) or program_id < 0:
            raise ValueError("since.program_id must be a non-negative integer")
        return cls(program_id=program_id, eval_seqs=_per_campaign(raw, "eval_seqs", int),
                   event_ids=_per_campaign(raw, "event_ids", int), created=_per_campaign(raw, "created", str))

    @classmethod
    def of(cls, data: dict) -> Held:
        """What a page that shows ``data`` holds: the same summary the page's script sends."""
        eval_seqs: dict[int, int] = {}
        for p in data["programs"]:
            eval_seqs[p["campaign_id"]] = max(eval_seqs.get(p["campaign_id"], 0), p["eval_seq"] or 0)
        return cls(program_id=max((p["id"] for p in data["programs"]), default=0), eval_seqs=eval_seqs,
                   event_ids={c["id"]: max((e["id"] for e in c["events"]), default=0) for c in data["campaigns"]},
                   created={c["id"]: c["created"] for c in data["campaigns"]})

    def to_json(self) -> str:
        return json.dumps({"program_id": self.program_id, "eval_seqs": dict(self.eval_seqs),
                           "event_ids": dict(self.event_ids), "created": dict(self.created)})

    def matches(self, campaigns: list[Any], last_program_id: int) -> bool:
        """Whether a delta against this archive state makes sense: the same campaigns, no ids from the future."""
        known = {row["id"]: row["created"] for row in campaigns}
        return self.program_id <= last_program_id and all(known.get(cid) == when for cid, when in self.created.items())


def _per_campaign(raw: dict, key: str, kind: type) -> dict[int, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"since.{key} must map campaign ids to values")
    out: dict[int, Any] = {}
    for cid, v in value.items():
        if not str(cid).isdigit() or not isinstance(v, kind) or isinstance(v, bool):
            raise ValueError(f"since.{key}[{cid!r}] must be a {kind.__name__} for a campaign id")
        out[int(cid)] = v
    return out


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
        "confirmed": _confirmed(metrics.get("confirmed")),
        "duplicate_of": row["duplicate_of"], "error": row["error"] or "",
        # The tail of a failed job's output explains the error; a successful one's is noise.
        "output_tail": "" if ok else (row["output_tail"] or ""),
        "fingerprint": row["fingerprint"], "created": row["created"], "evaluated": row["evaluated"],
        "eval_seq": row["eval_seq"], "wall_s": row["wall_s"], "resources": _resources(row),
    }


def _confirmed(confirmed: Any) -> dict | None:
    """The score measured again on fresh seeds, if the program was confirmed (what the page shows of it)."""
    if not isinstance(confirmed, dict) or confirmed.get("outcome") != "ok":
        return None
    ci = confirmed.get("ci")
    return {"score": finite(confirmed.get("score")), "seeds": confirmed.get("seeds"),
            "ci": [finite(ci[0]), finite(ci[1])] if isinstance(ci, list) and len(ci) == 2 else None}


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


def _curves(archive: Archive, campaign_id: int, steps: dict[int, dict[str, list]],
            evaluated_after: int = 0) -> dict[str, list[dict]]:
    """Program id (as a JSON key) -> per-task learning curves: each seed's, and the mean over seeds."""
    per: dict[tuple[int, str, int], list] = defaultdict(list)
    for r in archive.learning_curves(campaign_id, evaluated_after=evaluated_after):
        curve = _loads(r["curve"])
        if isinstance(curve, list):
            per[(r["program_id"], r["task"], r["held_out"])].append(curve)
    out: dict[str, list[dict]] = defaultdict(list)
    for (program_id, task, held_out), curves in per.items():
        known = steps.get(program_id, {}).get(task)
        out[str(program_id)].append(_curve_entry(task, held_out, curves, known))
    return dict(out)


def _campaign(archive: Archive, row: Any, held: Held | None = None) -> tuple[dict, list[dict], dict]:
    """The campaign's summary, its programs and their curves; with ``held``, only the programs and events it lacks."""
    config = _loads(row["config"], {}) or {}
    state = _loads(row["state"], {}) or {}
    grid = _grid(config)
    cid = row["id"]
    stats = archive.qd_stats(cid, grid["size"], grid["qd_offset"] or 0.0)
    cells = [{"island": c["island"], "cell": c["cell"], "coords": _loads(c["coords"], []),
              "program_id": c["program_id"], "score": c["score"], "updated": c["updated"]}
             for c in archive.cells(cid)]
    seen_seq = held.eval_seqs.get(cid, 0) if held else 0
    events = [{"id": e["id"], "time": e["time"], "kind": e["kind"], "evaluations": e["evaluations"],
               "best": e["best"], "qd_score": e["qd_score"], "coverage": e["coverage"],
               "evals_per_hour": e["evals_per_hour"], "data": _loads(e["data"], {})}
              for e in archive.events(cid, after=held.event_ids.get(cid, 0) if held else 0)]
    rows = archive.programs_changed(cid, held.program_id, seen_seq) if held else archive.programs_of(cid)
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
    return campaign, programs, _curves(archive, cid, steps, seen_seq)


def build_data(archive: Archive, *, live: bool = False, held: Held | None = None) -> dict:
    """Everything the page shows, from one consistent snapshot of the archive.

    ``live`` tells the page it is served (and may poll ``data.json``); a static report is not.
    With ``held``, the answer is a delta (``"delta": true``): the programs, curves and events the
    page lacks, and every campaign's summary in full. A ``held`` that does not fit this archive
    (another file now, or ids it never had) gets the whole data, marked ``"delta": false``.
    """
    with archive.snapshot():  # one consistent state, however the campaign writes meanwhile
        rows = archive.campaigns()
        if held is not None and not held.matches(rows, archive.last_program_id()):
            held = None
        campaigns, programs, curves = [], [], {}
        for row in rows:
            campaign, changed, per_program = _campaign(archive, row, held)
            campaigns.append(campaign)
            programs.extend(changed)
            curves.update(per_program)
        version = _version(archive)
    return {
        "format": REPORT_FORMAT, "database": archive.path.name, "live": live, "version": version,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "delta": held is not None, "campaigns": campaigns, "programs": programs, "curves": curves,
    }


def _version(archive: Archive) -> str:
    return hashlib.sha1(repr(archive.change_marks()).encode()).hexdigest()[:16]


def data_version(archive: Archive) -> str:
    """A short tag that changes whenever the archive does: lets a poll skip rebuilding unchanged data."""
    return _version(archive)


def to_json(data: dict) -> str:
    """Strict JSON (no NaN or infinity: a browser's JSON.parse rejects them); non-finite numbers become null."""
    return dumps(data)
