"""Export archived programs as standalone Python modules (DESIGN §9).

A user who found a good rule wants it in their own training code, without evosearch. An
export is therefore one file that imports nothing but torch (and whatever the rule itself
imports from the allow-list): the rule's code exactly as it was evaluated, a header that says
where it came from (campaign, lineage, scores with confidence intervals, the evaluation
config), and two entry points a CleanRL-style PPO script calls in place of its own loss and
GAE: ``compute_loss(...)`` and ``compute_advantages(...)``.

The rule's ``loss`` (and ``advantages``, if it has one) stay module-level functions, so the
exported file loads through ``evosearch.train.rule.load_rule`` unchanged and re-probing it
gives the archived fingerprint: what was scored is what is shipped.
"""

from __future__ import annotations

import ast
import datetime
import json
import math
import pprint
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evosearch import __version__

if TYPE_CHECKING:
    from evosearch.archive.store import Archive

#: Names the export adds at module level; a rule that binds one of them cannot be exported as is.
EXPORT_NAMES = frozenset({"PROVENANCE", "RuleBatch", "compute_loss", "compute_advantages", "gae"})


class ExportError(ValueError):
    """The program cannot be exported (unknown, not ok, or its source cannot be made a module)."""


# -- collecting provenance -------------------------------------------------------------------------


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def lineage(archive: Archive, program_id: int) -> list[dict[str, Any]]:
    """The chain of first parents from the root down to ``program_id``, each with its operator and score.

    Crossover children have more parents (``parent_ids``); the chain follows ``parent_id``,
    the parent that was edited, and lists the others as ``mates``.
    """
    chain: list[dict[str, Any]] = []
    seen: set[int] = set()
    current: int | None = program_id
    while current is not None and current not in seen:  # the guard only matters for a corrupted archive
        seen.add(current)
        row = archive.program(current)
        if row is None:
            break
        parents = _json(row["parent_ids"]) or []
        chain.append({"id": int(row["id"]), "operator": row["operator"], "outcome": row["outcome"],
                      "score": _finite(row["score"]), "note": row["note"] or "",
                      "mates": [int(p) for p in parents if p != row["parent_id"]]})
        current = row["parent_id"]
    return chain[::-1]


def provenance(archive: Archive, program_id: int) -> dict[str, Any]:
    """Everything the header says about a program, as plain JSON-compatible data."""
    row = archive.program(program_id)
    if row is None:
        raise ExportError(f"no program {program_id} in {archive.path}")
    campaign = archive.conn.execute("SELECT name, config FROM campaigns WHERE id = ?",
                                    (row["campaign_id"],)).fetchone()
    config = _json(campaign["config"]) or {}
    metrics = _json(row["metrics"]) or {}
    seeds: dict[str, int] = {}
    for e in archive.evaluations(program_id):
        seeds[e["task"]] = seeds.get(e["task"], 0) + 1

    def tasks(section: str) -> list[dict[str, Any]]:
        return [{"task": name, "mean_return": _finite(t.get("mean_return")),
                 "normalized": _finite(t.get("normalized_mean")),
                 "ci": [_finite(c) for c in (t.get("ci") or [None, None])], "seeds": seeds.get(name, 0)}
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
        "score": _finite(row["score"]),
        "ci": [_finite(row["ci_low"]), _finite(row["ci_high"])],
        "suite": metrics.get("suite"),
        "fitness": metrics.get("fitness") or (config.get("evaluation") or {}).get("fitness"),
        "hurdle_score": _finite(metrics.get("hurdle_score")),
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


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(ci: list[float | None]) -> str:
    return "-" if not ci or None in ci else f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _literal(data: dict[str, Any]) -> str:
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
    parts = [f"{'Policy' if p['kind'] == 'policy' else 'Rule'} program {p['program_id']} of evosearch campaign "
             f"{p['campaign']!r} (score {_fmt(p['score'])}, 95% CI {_ci(p['ci'])}), as a standalone module.", ""]
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
        f"score:        {_fmt(p['score'])}, 95% CI {_ci(p['ci'])} ({what}; stratified bootstrap)",
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
            parts.append(f"    {name:<{width}}  mean return {_fmt(t['mean_return'], 1):>8}  normalised "
                         f"{_fmt(t['normalized']):>7} {_ci(t['ci'])}  {t['seeds']} seeds")
    else:
        parts.append("    (no per-task scores: the program was not trained)")
    parts += ["", "Lineage (root first: id, operator, score, what changed):", ""]
    for step in p["lineage"]:
        mates = f" (with {', '.join(map(str, step['mates']))})" if step["mates"] else ""
        note = " ".join(step["note"].split())
        parts.append(f"    {step['id']:>6}  {step['operator']}{mates}  {_fmt(step['score'])}"
                     + (f"  {note[:100]}" if note else ""))
    parts += ["", "Evaluation config:", ""]
    parts += ["    " + line for line in json.dumps(p["evaluation_config"], indent=2).splitlines()]
    if description:
        parts += ["", "The program's own description", "-----------------------------", "", description]
    parts += ["", usage.strip("\n")]
    return _docstring_safe("\n".join(parts)).rstrip(" ") + "\n"


RULE_USAGE = '''
Use in CleanRL's ppo.py
-----------------------
Put this file beside ppo.py (say as ``my_rule.py``). The rule replaces CleanRL's GAE and its
loss; optimiser, gradient clipping and learning-rate annealing stay as they are (the rule was
selected under exactly those: Adam 2.5e-4 annealed, grad-norm 0.5, 4 envs x 128 steps,
4 epochs x 4 minibatches, 64-unit tanh MLPs)::

    import my_rule

    # after the rollout, instead of CleanRL's GAE loop:
    with torch.no_grad():
        next_value = agent.get_value(next_obs).reshape(-1)
        # CleanRL's dones[t] marks obs[t] as the first of a new episode; the rule wants
        # "the episode ended with step t", which is the flag one step later:
        ended = torch.cat([dones[1:], next_done.reshape(1, -1)])
        advantages = my_rule.compute_advantages(rewards, values, ended, next_value,
                                                gamma=args.gamma, lam=args.gae_lambda)
        returns = advantages + values

    # in the minibatch loop, instead of the pg_loss / v_loss / entropy_loss lines:
    _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions.long()[mb_inds])
    loss = my_rule.compute_loss(
        logp=newlogprob, old_logp=b_logprobs[mb_inds],
        advantages=b_advantages[mb_inds],   # raw GAE: do not normalise, the rule decides
        returns=b_returns[mb_inds], values=newvalue.view(-1), old_values=b_values[mb_inds],
        entropy=entropy, progress=(iteration - 1) / args.num_iterations)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
    optimizer.step()

The evosearch harness also bootstrapped time-limit truncations through the reward
(``rewards[t] += gamma * V(final obs)`` where an episode was truncated, not terminated);
CleanRL treats truncation as termination, which is the usual, slightly biased choice.
'''

POLICY_USAGE = '''
Use
---
``act(obs)`` maps a batch of observations ``[n, obs_dim]`` of ``ENV_ID`` to a batch of
actions; ``act_one(observation)`` does it for the single observation of a plain gymnasium env::

    import gymnasium as gym
    import policy_{program_id} as policy

    env = gym.make(policy.ENV_ID)
    observation, _ = env.reset(seed=0)
    episode_return, done = 0.0, False
    while not done:
        observation, reward, terminated, truncated, _ = env.step(policy.act_one(observation))
        episode_return += reward
        done = terminated or truncated

Only numpy is needed.
'''

POLICY_ENTRY_POINT = '''

# -- Entry point for a plain gymnasium loop (added by `evosearch export`; the policy above is unchanged) --

PROVENANCE = {provenance}


def act_one(observation):
    """The action for one observation of a single (not vectorised) environment.

    ``act`` answers batches; this wraps one observation as a batch of one and unwraps the
    answer: an int for a discrete action (``act`` returned a batch of whole numbers), else a
    float32 array for a continuous one.
    """
    import numpy

    actions = numpy.asarray(act(numpy.asarray(observation, dtype=numpy.float32)[None]))
    if actions.ndim == 1 and (actions.dtype.kind in "iu" or ENV_ID in DISCRETE_ENVS):
        return int(actions[0])
    return numpy.asarray(actions[0], dtype=numpy.float32).reshape(-1)


DISCRETE_ENVS = {discrete_envs}
'''

#: Environments whose actions are discrete, so ``act_one`` returns an int even for a float answer.
DISCRETE_ENVS = frozenset({"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3"})

RULE_ENTRY_POINTS = '''

# -- Entry points for a training script (added by `evosearch export`; the rule above is unchanged) --

PROVENANCE = {provenance}


class RuleBatch:
    """The minibatch a rule's ``loss(b)`` reads: 1-d tensors over samples and a 0-d ``progress``."""

    __slots__ = ("logp", "old_logp", "adv", "ret", "value", "old_value", "entropy", "progress")

    def __init__(self, logp, old_logp, adv, ret, value, old_value, entropy, progress) -> None:
        self.logp, self.old_logp, self.adv, self.ret = logp, old_logp, adv, ret
        self.value, self.old_value, self.entropy, self.progress = value, old_value, entropy, progress

    def __getitem__(self, name: str) -> torch.Tensor:
        return getattr(self, name)


def compute_loss(*, logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor,
                 values: torch.Tensor, old_values: torch.Tensor, entropy: torch.Tensor,
                 progress: "float | torch.Tensor" = 0.0) -> torch.Tensor:
    """The rule's loss on one minibatch, a 0-d tensor to minimise (call ``.backward()`` on it).

    logp        log-probability of the taken actions under the current policy (with gradient)
    old_logp    their log-probability when the rollout was collected
    advantages  advantages from ``compute_advantages``, NOT normalised: a rule that wants
                normalised advantages normalises them itself, as it did during the search
    returns     advantages + old values (the value targets)
    values      current value estimates (with gradient)
    old_values  value estimates when the rollout was collected
    entropy     policy entropy at each sample (with gradient)
    progress    fraction of training done, 0 at the first update and towards 1 at the last
                (some rules anneal with it)

    Every tensor is flattened to 1-d, so ``newvalue`` of shape ``[M, 1]`` is fine.
    """
    logp = logp.reshape(-1)
    batch = RuleBatch(logp, old_logp.reshape(-1), advantages.reshape(-1), returns.reshape(-1), values.reshape(-1),
                      old_values.reshape(-1), entropy.reshape(-1),
                      torch.as_tensor(progress, dtype=logp.dtype, device=logp.device).reshape(()))
    out = loss(batch)
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        raise ValueError(f"the rule's loss returned {{type(out).__name__}} {{getattr(out, 'shape', '')}}, "
                         "expected a 0-d tensor")
    return out


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
        gamma: float = 0.99, lam: float = 0.95) -> torch.Tensor:
    """Generalised advantage estimation over ``[T, N]`` rollouts (Schulman et al. 2016).

    ``dones[t]`` is 1 where the episode ended with step ``t``: step ``t`` then does not
    bootstrap from ``values[t + 1]``, which belongs to the next episode. ``last_value`` is the
    value of the observation after the last step, ``[N]``.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    for t in reversed(range(steps)):
        next_value = last_value if t == steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        last = delta + gamma * lam * not_done * last
        advantages[t] = last
    return advantages


def compute_advantages(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
                       gamma: float = 0.99, lam: float = 0.95) -> torch.Tensor:
    """{adv_doc}

    rewards, values, dones are ``[T, N]`` (steps x environments); ``dones[t]`` is 1 where the
    episode ended with step ``t`` (terminated or truncated); ``last_value`` is ``V`` of the
    observation after the last step, ``[N]`` (``[1, N]`` is accepted). Returns ``[T, N]``,
    detached. Add ``values`` to get the value targets (``returns``).
    """
    dones = dones.to(rewards.dtype)
    last_value = last_value.reshape(rewards.shape[1:]).to(rewards.dtype)
    with torch.no_grad():
{adv_body}
'''

ADV_FROM_RULE = '''\
        adv = advantages(rewards, values, dones, last_value, gamma, lam)
    if not isinstance(adv, torch.Tensor) or adv.shape != rewards.shape:
        raise ValueError(f"the rule's advantages returned {getattr(adv, 'shape', type(adv).__name__)}, "
                         f"expected shape {tuple(rewards.shape)}")
    return adv.detach().to(rewards.dtype)'''

ADV_FROM_GAE = '''\
        return gae(rewards, values, dones, last_value, gamma, lam)'''


def render_module(source: str, prov: dict[str, Any]) -> str:
    """The standalone module for a program's ``source`` with the provenance ``prov`` (see :func:`provenance`).

    The program's code goes in verbatim after its docstring (EVOLVE-BLOCK markers kept, so a
    reader sees which part was evolved); the entry points come after it and only read its
    ``loss`` and ``advantages``. The result is compiled before it is returned.
    """
    description, code = _split_source(source)
    tree = ast.parse(code)
    bound = _bound_names(tree)
    kind = prov.get("kind") or "rule"
    if kind == "rule":
        if bound.get("loss") != "other":
            raise ExportError("the program defines no `loss(b)`: nothing to export")
        clash = sorted(n for n in EXPORT_NAMES if n in bound)
        if bound.get("torch") == "other":
            clash.append("torch")
        if clash:
            raise ExportError(f"the program binds {', '.join(clash)}, which the exported module needs for its "
                              "entry points; rename them in the program first")
        has_adv = bound.get("advantages") == "other"
        adv_doc = ("Advantages by the rule's own ``advantages(...)`` estimator (it replaces GAE)." if has_adv else
                   "Advantages for the rule: plain GAE, since the rule defines no estimator of its own.")
        entry = RULE_ENTRY_POINTS.format(
            provenance=_literal({**prov, "advantages": "rule" if has_adv else "gae"}),
            adv_doc=adv_doc, adv_body=ADV_FROM_RULE if has_adv else ADV_FROM_GAE)
        usage = RULE_USAGE
        exports = ["loss", "compute_loss", "compute_advantages", "gae", "PROVENANCE"]
        if has_adv:
            exports.insert(1, "advantages")
    else:
        if bound.get("act") != "other":
            raise ExportError("the program defines no `act(obs)`: nothing to export")
        clash = sorted(n for n in ("PROVENANCE", "act_one", "DISCRETE_ENVS") if n in bound)
        if clash:
            raise ExportError(f"the program binds {', '.join(clash)}, which the exported module needs; rename first")
        if "ENV_ID" not in bound:
            raise ExportError("the policy declares no ENV_ID: a gymnasium loop would not know its environment")
        entry = POLICY_ENTRY_POINT.format(provenance=_literal(prov), discrete_envs=repr(sorted(DISCRETE_ENVS)))
        usage, exports = POLICY_USAGE.replace("{program_id}", str(prov.get("program_id"))), \
            ["act", "act_one", "ENV_ID", "PROVENANCE"]
    imports = ("import torch  # the only dependency of the entry points below\n\n" if kind == "rule" else "")
    text = ('"""' + _header(prov, description, usage) + '"""\n\n' + imports
            + code.rstrip("\n") + "\n" + entry.rstrip("\n") + "\n\n\n"
            + f"__all__ = {exports!r}\n")
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
                     f"{_fmt(row['score'])} | {_ci([row['ci_low'], row['ci_high']])} | {_md(row['operator'])} | "
                     f"{row['generation']} | {_md(row['note'] or '')} |")
    index = out / "index.md"
    index.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(index)
    return written


__all__ = ["ExportError", "export_best", "export_program", "lineage", "provenance", "render_module"]
