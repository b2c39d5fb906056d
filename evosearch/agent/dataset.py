"""Training data for a proposer LLM, read from campaign archives: SFT pairs and step-wise RL states.

Two JSONL files in the shape TRL reads (``datasets.load_dataset("json", ...)``):

- ``sft.jsonl``, exploration-enriched SFT (ML-Agent, Liu et al. 2025): every archived child,
  whatever operator made it (llm, gp.*, ast.*, metatune, ...), that beat its parent, as the
  answer the LLM proposer would have had to give: the prompt the campaign would send for the
  parent, and the child as SEARCH/REPLACE blocks (:func:`evosearch.agent.edits.render_edit`).
  Offline operators explore where a model would not, so their successes widen what the model
  sees. Kept diverse: one row per child fingerprint (the best gain), at most
  ``max_per_parent`` rows per parent, and no two rows with the same edit text.
- ``states.jsonl``, step-wise RL: each program that a campaign went on to use as a parent,
  with the prompt it would have got at that step, for a trainer (GRPO) to ask a model about
  and reward by evaluation.
- ``warmup.jsonl`` (only with ``operator_edits``): format warm-up, edits the AST operators
  make of each state's parent, not evaluated (:mod:`evosearch.agent.warmup`).

The prompt is built by the campaign's own code: the stored config is loaded, an
:class:`~evosearch.campaign_llm.LlmDriver` gives each program's feedback as the prompt shows it,
and :meth:`~evosearch.propose.llm.LlmProposer.messages` writes the messages with the
campaign's templates. The answer format is SEARCH/REPLACE (``edit_format: diff``) even for a
campaign whose models were asked for full rewrites, since every completion is blocks and a
prompt must ask for what its completion is (the summary notes such a campaign). Only what
the archive knew when the parent's result was recorded goes in, so no row leaks the future (a
child shown to the model as an "inspiration" for its own parent): the inspirations are the
best other programs evaluated before the parent (smaller ``eval_seq``), best first, one per
behaviour. The campaign's RNG draw that varied the wording cannot be recovered from the
archive, so each parent's prompt uses a seed derived from the campaign's name and the parent's
id (:func:`prompt_seed`): the same archive always gives the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from evosearch.agent.edits import render_edit
from evosearch.agent.warmup import WARMUP_FILE, warmup_rows
from evosearch.archive.selection import as_parent
from evosearch.archive.store import Archive
from evosearch.campaign_llm import LlmDriver
from evosearch.config import CampaignConfig, LLMModelConfig, config_from_dict
from evosearch.fmt import finite
from evosearch.propose.llm import LlmRequest
from evosearch.propose.prompts import Feedback

SFT_FILE, STATES_FILE, SUMMARY_FILE = "sft.jsonl", "states.jsonl", "summary.json"

#: Stands in for a model in a request: the messages do not depend on which model would be asked.
_NO_MODEL = LLMModelConfig(model="dataset", base_url="http://localhost/unused")


@dataclass
class DatasetSummary:
    """What ``build_datasets`` wrote and what it left out, and why (also written as ``summary.json``).

    ``pairs`` counts (parent, child) links among the programs read; ``improving`` those where
    both were scored and the child beat the parent by more than ``min_gain``. ``skipped`` counts
    by reason: ``child_not_scored``, ``parent_not_scored``, ``no_gain``, ``not_an_edit`` (the
    child differs outside the EVOLVE-BLOCK, e.g. a GP program rendered anew), then, among the
    rendered edits, ``duplicate_fingerprint``, ``parent_cap``, ``same_edit``; for states,
    ``state_parent_not_ok`` (a parent that was never scored, such as a failed seed mutated as
    a fallback); ``campaign_unusable`` and ``duplicate_database`` (the reasons are in
    ``problems``, one line each).
    """

    out: str
    sft_rows: int = 0
    states: int = 0
    warmup_rows: int = 0
    operator_edits: int = 0
    databases: int = 0
    campaigns: int = 0
    pairs: int = 0
    improving: int = 0
    max_per_parent: int = 3
    min_gain: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def to_dict(self) -> dict:
        """The summary as JSON takes it: an infinite ``min_gain`` (``-inf``: every scored pair) becomes null."""
        data = asdict(self)
        data["min_gain"] = finite(self.min_gain)
        return data


@dataclass
class _Candidate:
    """A rendered edit that beat its parent, before the diversity filters choose among them."""

    view: _CampaignView
    parent_id: int
    child: sqlite3.Row
    gain: float
    edit: str
    prompt: list[dict]  # built while the archive is open: the feedback is read from it

    @property
    def behaviour(self) -> str:
        """The child's fingerprint, or its source hash when it has none (then it is only its own twin)."""
        return self.child["fingerprint"] or f"sha:{self.child['sha']}"

    @property
    def order(self) -> tuple:
        return (-self.gain, self.view.db_index, self.view.campaign_id, int(self.child["id"]))


def prompt_seed(campaign: str, program_id: int) -> int:
    """The seed of the wording of ``program_id``'s prompt: fixed by the campaign's name and the id."""
    digest = hashlib.sha256(f"{campaign}\0{program_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _ok(row: sqlite3.Row) -> bool:
    return row["status"] == "done" and row["outcome"] == "ok" and row["score"] is not None \
        and row["eval_seq"] is not None


class _CampaignView:
    """One campaign of one archive, with its config loaded and the campaign's prompt machinery set up."""

    def __init__(self, db: Path, db_index: int, archive: Archive, row: sqlite3.Row) -> None:
        self.db, self.db_index = db, db_index
        self.name, self.campaign_id = str(row["name"]), int(row["id"])
        self.config: CampaignConfig = config_from_dict(json.loads(row["config"]))  # ConfigError: unusable
        # The campaign's own driver, without its models: no client is built, nothing is reserved or called.
        # The answer format is always SEARCH/REPLACE: a prompt must ask for the format of its completion.
        self.rewrites = self.config.llm.edit_format != "diff"
        quiet = replace(self.config, llm=replace(self.config.llm, models=(), edit_format="diff"))
        self.driver = LlmDriver(quiet, archive, self.campaign_id, {}, lambda _fp: False, lambda _src: None)
        self.programs: dict[int, sqlite3.Row] = {int(r["id"]): r for r in archive.programs_of(self.campaign_id)}
        self._feedback: dict[int, Feedback | None] = {}
        self._prompts: dict[int, list[dict]] = {}
        self._inspirations: dict[int, list[int]] | None = None

    @property
    def suite(self) -> str:
        return self.driver.suite.name

    def parent_ids(self) -> set[int]:
        """Programs of this campaign that a later program names as its (first) parent."""
        return {int(r["parent_id"]) for r in self.programs.values()
                if r["parent_id"] is not None and int(r["parent_id"]) in self.programs}

    def prompt(self, program_id: int) -> list[dict]:
        """The messages the campaign's LLM proposer would send for ``program_id`` when its result came in."""
        if program_id not in self._prompts:
            mates = [as_parent(self.programs[i]) for i in self.inspirations()[program_id]]
            request = LlmRequest(
                model=_NO_MODEL, kind=self.config.kind, parent=as_parent(self.programs[program_id]),
                feedback=self.feedback(program_id), inspirations=[(m, self.feedback(m.program_id)) for m in mates],
                seed=prompt_seed(self.name, program_id), source_known=lambda _sha: False,
                fingerprint_known=lambda _fp: False, fingerprint=lambda _src: None)
            self._prompts[program_id] = self.driver.proposer.messages(request)
        return self._prompts[program_id]

    def feedback(self, program_id: int | None) -> Feedback | None:
        if program_id not in self._feedback:
            self._feedback[program_id] = self.driver.feedback(program_id)
        return self._feedback[program_id]

    def inspirations(self) -> dict[int, list[int]]:
        """For each scored program, the ids of the best programs scored before it (see :func:`best_before`)."""
        if self._inspirations is None:
            count = max(1, self.config.selection.inspirations)  # what the campaign asks the selection for
            self._inspirations = best_before(list(self.programs.values()), count)
        return self._inspirations


def best_before(programs: list[sqlite3.Row] | list[dict], count: int) -> dict[int, list[int]]:
    """For each ``ok`` program, the ids of up to ``count`` ``ok`` programs recorded before it, best first.

    "Before" is a smaller ``eval_seq``, so only what the archive held when the program's result
    came in; best is by score (the earlier of equals first); a behaviour (fingerprint) appears
    once, as its best program, like the cells of a grid hold distinct programs.
    """
    scored = sorted((r for r in programs if _ok(r)), key=lambda r: r["eval_seq"])
    best: list = []
    out: dict[int, list[int]] = {}
    for row in scored:
        out[int(row["id"])] = [int(r["id"]) for r in best]
        ranked = sorted([*best, row], key=lambda r: (-r["score"], r["eval_seq"]))
        seen: set[str] = set()
        best = []
        for r in ranked:
            key = r["fingerprint"] or f"id:{r['id']}"
            if key not in seen and len(best) < count:
                seen.add(key)
                best.append(r)
    return out


def build_datasets(dbs: list[Path], out: Path, *, max_per_parent: int = 3, min_gain: float = 0.0,
                   operator_edits: int = 0) -> DatasetSummary:
    """Write ``sft.jsonl``, ``states.jsonl`` and ``summary.json`` under ``out`` from the archives ``dbs``.

    With ``operator_edits`` > 0, also ``warmup.jsonl``: that many AST-operator edits of each
    state's parent (:mod:`evosearch.agent.warmup`); with 0 an earlier ``warmup.jsonl`` is removed,
    so the folder never mixes runs.

    Each archive is opened read-only and read in one snapshot, so a campaign still running is
    seen at one consistent moment. A campaign whose stored config or suite no longer loads is
    left out with the reason in the summary; a missing file is a FileNotFoundError before
    anything is written. The rows: see the module docstring and ``evosearch agent dataset --help``.
    """
    if max_per_parent < 1:
        raise ValueError(f"max_per_parent must be at least 1, got {max_per_parent}")
    if min_gain != min_gain:
        raise ValueError("min_gain must be a number, not NaN")
    if operator_edits < 0:
        raise ValueError(f"operator_edits must be 0 or more, got {operator_edits}")
    missing = [str(db) for db in dbs if not Path(db).is_file()]
    if missing:
        raise FileNotFoundError(f"no archive database at {', '.join(missing)}")
    summary = DatasetSummary(out=str(out), max_per_parent=max_per_parent, min_gain=min_gain,
                             operator_edits=operator_edits)
    candidates: list[_Candidate] = []
    states: list[dict] = []
    seen_files: set[Path] = set()
    for index, db in enumerate(map(Path, dbs)):
        if db.resolve() in seen_files:
            summary.skip("duplicate_database")
            summary.problems.append(f"{db}: named twice; read once")
            continue
        seen_files.add(db.resolve())
        summary.databases += 1
        archive = Archive(db, readonly=True)
        try:
            with archive.snapshot():
                for row in archive.campaigns():
                    view = _open_view(db, index, archive, row, summary)
                    if view is None:
                        continue
                    summary.campaigns += 1
                    if view.rewrites:
                        summary.problems.append(f"{db}: campaign {view.name!r} asks its models for full rewrites; "
                                                "its prompts here ask for SEARCH/REPLACE blocks, like the completions")
                    candidates += _candidates(view, min_gain, summary)
                    states += _states(view, summary)
        finally:
            archive.close()
    kept = _diverse(candidates, max_per_parent, summary)
    warmup = warmup_rows(states, operator_edits, seed_of=_state_seed) if operator_edits else None
    summary.sft_rows, summary.states = len(kept), len(states)
    summary.warmup_rows = len(warmup or ())
    _write(out, [_sft_row(c) for c in kept], states, summary, warmup)
    return summary


def _state_seed(state: dict) -> int:
    return prompt_seed(state["meta"]["campaign"], state["meta"]["program_id"])


def _open_view(db: Path, index: int, archive: Archive, row: sqlite3.Row,
               summary: DatasetSummary) -> _CampaignView | None:
    """The campaign ready for prompts, or None with the reason noted (a config or suite that no longer loads)."""
    try:
        return _CampaignView(db, index, archive, row)
    except (ValueError, OSError) as err:  # ConfigError, SuiteError and TemplateError are ValueErrors
        summary.skip("campaign_unusable")
        summary.problems.append(f"{db}: campaign {row['name']!r} left out: {err}")
        return None


def _candidates(view: _CampaignView, min_gain: float, summary: DatasetSummary) -> list[_Candidate]:
    """Every child of the campaign that beat its parent by more than ``min_gain``, rendered as an edit."""
    found = []
    for child in view.programs.values():
        if child["parent_id"] is None or int(child["parent_id"]) not in view.programs:
            continue
        summary.pairs += 1
        parent = view.programs[int(child["parent_id"])]
        if not _ok(child):
            summary.skip("child_not_scored")
            continue
        if not _ok(parent):
            summary.skip("parent_not_scored")
            continue
        gain = float(child["score"]) - float(parent["score"])
        if not gain > min_gain:
            summary.skip("no_gain")
            continue
        summary.improving += 1
        try:
            edit = render_edit(parent["source"], child["source"])
        except ValueError:
            summary.skip("not_an_edit")
            continue
        found.append(_Candidate(view, int(parent["id"]), child, gain, edit, view.prompt(int(parent["id"]))))
    return found


def _diverse(candidates: list[_Candidate], max_per_parent: int, summary: DatasetSummary) -> list[_Candidate]:
    """Best gains first: one row per behaviour, at most ``max_per_parent`` per parent, no repeated edit text.

    A behaviour's best row is its only chance (a twin with a smaller gain is not kept in its
    place when the cap drops it); the text check compares with whitespace collapsed, across
    every parent and archive, since the same small edit of many parents teaches one thing.
    Rows come out in archive, campaign and child order.
    """
    behaviours: set[str] = set()
    texts: set[str] = set()
    per_parent: Counter = Counter()
    kept = []
    for c in sorted(candidates, key=lambda c: c.order):
        parent_key = (c.view.db_index, c.view.campaign_id, c.parent_id)
        text = " ".join(c.edit.split())
        if c.behaviour in behaviours:
            summary.skip("duplicate_fingerprint")
            continue
        behaviours.add(c.behaviour)
        if per_parent[parent_key] >= max_per_parent:
            summary.skip("parent_cap")
            continue
        if text in texts:
            summary.skip("same_edit")
            continue
        texts.add(text)
        per_parent[parent_key] += 1
        kept.append(c)
    return sorted(kept, key=lambda c: (c.view.db_index, c.view.campaign_id, int(c.child["id"])))


def _sft_row(c: _Candidate) -> dict:
    child = c.child
    return {
        "prompt": c.prompt,
        "completion": [{"role": "assistant", "content": c.edit}],
        "meta": {"db": str(c.view.db), "campaign": c.view.name, "parent_id": c.parent_id, "child_id": int(child["id"]),
                 "operator": child["operator"], "gain": c.gain, "child_fingerprint": child["fingerprint"]},
    }


def _states(view: _CampaignView, summary: DatasetSummary) -> list[dict]:
    """One row per program the campaign used as a parent, at the step its result was recorded."""
    rows = []
    for program_id in sorted(view.parent_ids(), key=lambda i: (view.programs[i]["eval_seq"] or 0, i)):
        program = view.programs[program_id]
        if not _ok(program):
            summary.skip("state_parent_not_ok")
            continue
        rows.append({
            "prompt": view.prompt(program_id),
            "parent_source": program["source"],
            "parent_score": float(program["score"]),
            "parent_fingerprint": program["fingerprint"],
            "kind": view.config.kind,
            "suite": view.suite,
            "meta": {"db": str(view.db), "campaign": view.name, "program_id": program_id,
                     "evaluations_before": int(program["eval_seq"])},
        })
    return rows


def _write(out: Path, sft: list[dict], states: list[dict], summary: DatasetSummary,
           warmup: list[dict] | None) -> None:
    """Write the files, each through a temporary name, so a reader never sees half a file."""
    out.mkdir(parents=True, exist_ok=True)
    files = [(SFT_FILE, sft), (STATES_FILE, states)] + ([(WARMUP_FILE, warmup)] if warmup is not None else [])
    for name, rows in files:
        _replace(out / name, "".join(json.dumps(r, allow_nan=False, ensure_ascii=False) + "\n" for r in rows))
    if warmup is None:
        (out / WARMUP_FILE).unlink(missing_ok=True)
    _replace(out / SUMMARY_FILE, json.dumps(summary.to_dict(), indent=2, allow_nan=False) + "\n")


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["DatasetSummary", "best_before", "build_datasets", "prompt_seed", "SFT_FILE", "STATES_FILE",
           "SUMMARY_FILE", "WARMUP_FILE"]
