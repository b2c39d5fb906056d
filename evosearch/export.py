"""Export archived programs as standalone Python modules.

A user who found a good rule wants it in their own training code, without evosearch. An
export is therefore one file that imports nothing but torch (and whatever the rule itself
imports from the allow-list): the rule's code exactly as it was evaluated, a header that says
where it came from (campaign, lineage, scores with confidence intervals, the evaluation
config), and two entry points a CleanRL-style PPO script calls in place of its own loss and
GAE: ``compute_loss(...)`` and ``compute_advantages(...)``.

The rule's ``loss`` (and ``advantages``, if it has one) stay module-level functions, so the
exported file loads through ``evosearch.train.rule.load_rule`` unchanged and re-probing it
gives the archived fingerprint: what was scored is what is shipped.

A policy export works the same way around ``act(obs)``, adding ``act_one(observation)`` for a
plain gymnasium loop. The text the export adds (entry points, usage) lives in package data files
under ``evosearch/export_templates/``; this module only fills them in.
"""

from __future__ import annotations

import ast
import datetime
import functools
import json
import pprint
import re
import sqlite3
import string
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evosearch import __version__, fmt, kinds
from evosearch.fmt import finite

if TYPE_CHECKING:
    from evosearch.archive.store import Archive

class ExportError(ValueError):
    """The program cannot be exported (unknown, not ok, or its source cannot be made a module)."""


# -- collecting provenance -------------------------------------------------------------------------


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def lineage(archive: Archive, program_id: int) -> list[dict[str, Any]]:
    """The chain of first parents from the root down to ``program_id``, each with its operator and score.

    Crossover children have more parents (``parent_ids``); the chain follows ``parent_id``,
    the parent that was edited, and lists the others as ``mates``.
    """
    chain = []
    for row in archive.ancestors(program_id).rows:  # stops early only in a corrupted archive
        parents = _json(row["parent_ids"]) or []
        chain.append({"id": int(row["id"]), "operator": row["operator"], "outcome": row["outcome"],
                      "score": finite(row["score"]), "note": row["note"] or "",
                      "mates": [int(p) for p in parents if p != row["parent_id"]]})
    return chain


def provenance(archive: Archive, program_id: int) -> dict[str, Any]:
    """Everything the header says about a program, as plain JSON-compatible data."""
    row = archive.program(program_id)
    if row is None:
        raise ExportError(f"no program {program_id} in {archive.path}")
    campaign = archive.campaign_by_id(row["campaign_id"])
    config = _json(campaign["config"]) or {}
    metrics = _json(row["metrics"]) or {}
    seeds: dict[str, int] = {}
    for e in archive.evaluations(program_id):
        seeds[e["task"]] = seeds.get(e["task"], 0) + 1

    def tasks(section: str) -> list[dict[str, Any]]:
        return [{"task": name, "mean_return": finite(t.get("mean_return")),
                 "normalized": finite(t.get("normalized_mean")),
                 "ci": [finite(c) for c in (t.get("ci") or [None, None])], "seeds": seeds.get(name, 0)}
                for name, t in (metrics.get(section) or {}).items()]

    return {
        "campaign": campaign["name"],
        "archive": str(archive.path),
        "program_id": int(row["id"]),
        "kind": row["kind"],
        "operator": row["operator"],
        "model": row["model"],
        "island": row["island"],
        "generation": int(row["generation"]),
        "note": row["note"] or "",
        "status": row["status"],
        "outcome": row["outcome"],
        "stage": row["stage"],
        "error": row["error"] or "",
        "score": finite(row["score"]),
        "ci": [finite(row["ci_low"]), finite(row["ci_high"])],
        "suite": metrics.get("suite"),
        "fitness": metrics.get("fitness") or (config.get("evaluation") or {}).get("fitness"),
        "hurdle_score": finite(metrics.get("hurdle_score")),
        "tasks": tasks("tasks"),
        "held_out": tasks("held_out"),
        "fingerprint": row["fingerprint"],
        "sha": row["sha"],
        "evaluated": row["evaluated"],
        "lineage": lineage(archive, program_id),
        "evaluation_config": config.get("evaluation") or {},
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "evosearch_version": __version__,
    }


# -- rendering the module ----------------------------------------------------------------------------


def _docstring_safe(text: str) -> str:
    """Text that can sit inside a triple-quoted docstring whatever an LLM put in a note.

    Backslashes and quote runs are escaped, other control characters become ``\\xNN``
    escapes, and the text never ends in a quote (which would merge with the closing quotes).
    """
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)
    return text + "\n" if text.endswith('"') else text


def _ci(ci: list[float | None]) -> str:
    """A stored ``[low, high]`` as :func:`evosearch.fmt.ci` writes it; ``-`` if it is not a pair."""
    return fmt.ci(*ci) if ci and len(ci) == 2 else fmt.MISSING


def literal(data: dict[str, Any]) -> str:
    """``data`` as a readable Python dict literal: one key per line, long values wrapped under their key."""
    lines = ["{"]
    for key, value in data.items():
        prefix = f"    {key!r}: "
        text = pprint.pformat(value, width=max(40, 116 - len(prefix)), sort_dicts=False)
        lines.append(prefix + text.replace("\n", "\n" + " " * len(prefix)) + ",")
    return "\n".join(lines + ["}"])


def _split_source(source: str) -> tuple[str, str]:
    """``(docstring, code)``: the program's module docstring and everything after it, verbatim."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ExportError(f"the program's source is not valid Python (line {err.lineno}: {err.msg})") from err
    first = tree.body[0] if tree.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        lines = source.splitlines(keepends=True)
        return first.value.value.strip(), "".join(lines[first.end_lineno:]).strip("\n") + "\n"
    return "", source.strip("\n") + "\n"


def _bound_names(tree: ast.Module) -> dict[str, str]:
    """Module-level names a program binds -> ``"import"`` or ``"other"`` (function bodies not entered)."""
    names: dict[str, str] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = "other"
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.setdefault(alias.asname or alias.name.split(".")[0], "import")
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names[node.id] = "other"
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in tree.body:
        visit(stmt)
    return names


def _header(prov: dict[str, Any], description: str, usage: str) -> str:
    """The module docstring: provenance a reader can check, then the rule's own description and usage."""
    p = prov
    fitness = p.get("fitness") or "iqm"
    what = ("IQM of normalised returns over tasks x seeds" if fitness == "iqm"
            else "IQM of normalised areas under the learning curves over tasks x seeds")
    parts = [f"{(p['kind'] or kinds.DEFAULT).capitalize()} program {p['program_id']} of evosearch campaign "
             f"{p['campaign']!r} (score {fmt.score(p['score'])}, 95% CI {_ci(p['ci'])}), as a standalone module.", ""]
    parts += [
        "Provenance",
        "----------",
        f"campaign:     {p['campaign']} (archive {p['archive']})",
        f"program:      {p['program_id']}, operator {p['operator']}"
        + (f", model {p['model']}" if p["model"] else "")
        + f", island {'all (seed)' if p['island'] is None else p['island']}, generation {p['generation']}",
    ]
    if p["note"]:
        parts.append(f"change:       {' '.join(p['note'].split())}")
    parts.append(f"outcome:      {p['outcome'] or p['status']}" + (f" at stage {p['stage']}" if p["stage"] else ""))
    if p["error"] and p["outcome"] != "ok":
        parts.append(f"error:        {' '.join(p['error'].split())[:300]}")
    parts += [
        f"score:        {fmt.score(p['score'])}, 95% CI {_ci(p['ci'])} ({what}; stratified bootstrap)",
        f"suite:        {p['suite'] or '-'}, fitness {fitness}",
        f"fingerprint:  {p['fingerprint'] or '-'}",
        f"evaluated:    {p['evaluated'] or '-'}",
        f"exported:     {p['exported']} by evosearch {p['evosearch_version']}",
        "",
        "Normalised score per task: 0 is uniform random play, 1 is PPO-clip under the evosearch",
        "harness at the suite's budget and seeds (CleanRL ppo.py hyperparameters).",
        "",
    ]
    rows = [(t["task"], t) for t in p["tasks"]] + [(t["task"] + " (held-out)", t) for t in p["held_out"]]
    if rows:
        width = max(len(name) for name, _ in rows)
        for name, t in rows:
            parts.append(f"    {name:<{width}}  mean return {fmt.score(t['mean_return'], 1):>8}  normalised "
                         f"{fmt.score(t['normalized']):>7} {_ci(t['ci'])}  {t['seeds']} seeds")
    else:
        parts.append("    (no per-task scores: the program was not trained)")
    parts += ["", "Lineage (root first: id, operator, score, what changed):", ""]
    for step in p["lineage"]:
        mates = f" (with {', '.join(map(str, step['mates']))})" if step["mates"] else ""
        note = " ".join(step["note"].split())
        parts.append(f"    {step['id']:>6}  {step['operator']}{mates}  {fmt.score(step['score'])}"
                     + (f"  {note[:100]}" if note else ""))
    parts += ["", "Evaluation config:", ""]
    parts += ["    " + line for line in json.dumps(p["evaluation_config"], indent=2).splitlines()]
    if description:
        parts += ["", "The program's own description", "-----------------------------", "", description]
    parts += ["", usage.strip("\n")]
    return _docstring_safe("\n".join(parts)).rstrip(" ") + "\n"


#: Where the text the export adds around a program lives: package data beside this module, with
#: :class:`string.Template` placeholders (``$provenance``), since the templates are Python code full of braces.
TEMPLATE_DIR = "export_templates"


@functools.cache
def template_text(name: str) -> str:
    """The packaged export template ``evosearch/export_templates/<name>``, as it is on disk."""
    return resources.files("evosearch").joinpath(TEMPLATE_DIR, name).read_text(encoding="utf-8")


def template(name: str) -> string.Template:
    return string.Template(template_text(name))


#: Environments whose actions are discrete, so ``act_one`` returns an int even for a float answer; an
#: exported policy embeds them as a literal list (it must not need evosearch to run).
def render_module(source: str, prov: dict[str, Any]) -> str:
    """The standalone module for a program's ``source`` with the provenance ``prov`` (see :func:`provenance`).

    The program's code goes in verbatim after its docstring (EVOLVE-BLOCK markers kept, so a
    reader sees which part was evolved); the entry points come after it and only read its
    ``loss`` and ``advantages`` (a rule) or ``act`` and ``ENV_ID`` (a policy). The result is
    compiled before it is returned.
    """
    description, code = _split_source(source)
    bound = _bound_names(ast.parse(code))
    try:
        kind = kinds.get(prov.get("kind") or kinds.DEFAULT)
    except ValueError as err:
        raise ExportError(str(err)) from None
    parts = kind.export_parts(bound, prov)
    text = ('"""' + _header(prov, description, parts.usage) + '"""\n\n' + parts.imports
            + code.rstrip("\n") + "\n\n\n" + parts.entry.strip("\n") + "\n\n\n"
            + f"__all__ = {parts.exports!r}\n")
    try:
        compile(text, f"<export of program {prov.get('program_id')}>", "exec")
    except SyntaxError as err:  # a bug here, not the user's: say so plainly
        raise ExportError(f"the exported module does not compile (line {err.lineno}: {err.msg})") from err
    return text


# -- the API -----------------------------------------------------------------------------------------


def export_program(archive: Archive, program_id: int, *, allow_failed: bool = False) -> str:
    """The source of a standalone module for program ``program_id`` of ``archive``.

    Refuses (``ExportError``, a ``ValueError``) a program that did not evaluate ``ok``: a
    failed or unevaluated rule has no scores to vouch for it. ``allow_failed=True`` exports it
    anyway (for debugging); its header then states the outcome and the error.
    """
    row = archive.program(program_id)
    if row is None:
        raise ExportError(f"no program {program_id} in {archive.path}")
    if row["outcome"] != "ok" and not allow_failed:
        state = row["outcome"] or row["status"]
        why = f": {' '.join((row['error'] or '').split())[:200]}" if row["error"] else ""
        raise ExportError(f"program {program_id} is {state}, not ok{why}; only programs that evaluated ok are "
                          "exported (allow_failed=True / --allow-failed exports it anyway)")
    return render_module(row["source"], provenance(archive, program_id))


def _md(text: Any) -> str:
    """A Markdown table cell: one line, pipes escaped, HTML neutralised (notes may come from an LLM)."""
    text = " ".join(str(text).split())
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("`", "\\`"))


def export_best(archive: Archive, n: int, out_dir: str | Path, campaign: str | None = None) -> list[Path]:
    """Export the ``n`` best ``ok`` programs into ``out_dir`` as ``rule_<id>.py``, plus an ``index.md``.

    Returns the paths written: the modules best first, then the index. Fewer than ``n``
    files are written when the archive holds fewer ok programs; none is an error.
    """
    if n < 1:
        raise ExportError(f"n must be at least 1, got {n}")
    campaign_id = None
    if campaign is not None:
        row = archive.campaign(campaign)
        if row is None:
            raise ExportError(f"no campaign {campaign!r} in {archive.path}")
        campaign_id = int(row["id"])
    best: list[sqlite3.Row] = archive.list_programs(campaign_id, outcome="ok", order="score", limit=n)
    if not best:
        raise ExportError(f"no program evaluated ok in {archive.path}"
                          + (f" for campaign {campaign!r}" if campaign else ""))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    lines = [f"# Best {len(best)} programs of {archive.path.name}" + (f", campaign {campaign}" if campaign else ""),
             "",
             f"Exported {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} by evosearch "
             f"{__version__}. Scores are the campaign's fitness with 95% bootstrap CIs; each file's header has the "
             "per-task scores, lineage and evaluation config.",
             "",
             "| rank | file | id | campaign | score | 95% CI | operator | generation | change |",
             "|---:|---|---:|---|---:|---|---|---:|---|"]
    for rank, row in enumerate(best, 1):
        path = out / f"{row['kind']}_{row['id']}.py"
        path.write_text(export_program(archive, int(row["id"])), encoding="utf-8")
        written.append(path)
        lines.append(f"| {rank} | [{path.name}]({path.name}) | {row['id']} | {_md(row['campaign'])} | "
                     f"{fmt.score(row['score'])} | {_ci([row['ci_low'], row['ci_high']])} | {_md(row['operator'])} | "
                     f"{row['generation']} | {_md(row['note'] or '')} |")
    index = out / "index.md"
    index.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(index)
    return written


__all__ = ["ExportError", "export_best", "export_program", "lineage", "provenance", "render_module"]
