"""Format warm-up rows: edits the campaign's own AST operators make of each state's parent.

Why: a base model that has never seen SEARCH/REPLACE blocks learns the format from the
improving children of ``sft.jsonl`` alone only if there are many of them, and a search of a
few hundred evaluations yields tens. The AST operators (constant, operator, clamp, drop and
duplicate term) write valid children of any parent in microseconds, each a small edit whose
SEARCH lines are the parent's own lines, so they teach exactly what a model must do before
any reward can reach it: copy a parent's lines exactly and change them into a program that
passes the static check. They are not evaluated, so they say nothing about which edit is
good; that is left to ``sft.jsonl`` (edits that beat their parent) and GRPO (the reward). In
ML-Agent's terms they enrich exploration at the format level only.

The rows share the states' prompts (the prompt the campaign would send for that parent), so
warm-up, SFT and GRPO all see the same inputs. Drawn from a seed fixed by the state's
campaign and program id, the same archive always gives the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from evosearch.agent.edits import render_edit
from evosearch.propose.ast_ops import ast_operators
from evosearch.propose.base import Parent, ProposalError
from evosearch.propose.llm_edits import EditError, apply_response

WARMUP_FILE = "warmup.jsonl"
TRIES_PER_ROW = 4  # proposals tried per row wanted: some operators find no site in some parents


def warmup_rows(states: list[dict], per_state: int, *, seed_of: Callable[[dict], int]) -> list[dict]:
    """Up to ``per_state`` distinct operator edits of each state's parent, as (prompt, completion) rows.

    ``seed_of(state)`` gives the RNG seed of a state's draws. Every row is checked to apply back
    to its parent and give exactly the operator's child, so a row can never teach an edit that
    the campaign's parser would refuse.
    """
    if per_state < 0:
        raise ValueError(f"operator edits per state must be 0 or more, got {per_state}")
    operators = [op for op in ast_operators() if op.arity == 1]
    rows: list[dict] = []
    for state in states:
        kind = state.get("kind") or "rule"
        parent = Parent(source=state["parent_source"], kind=kind)
        rng = random.Random(seed_of(state))
        edits: set[str] = set()
        for _ in range(per_state * TRIES_PER_ROW):
            if len(edits) >= per_state:
                break
            operator = rng.choice(operators)
            try:
                child = operator.propose([parent], rng).source
                edit = render_edit(parent.source, child)
                if edit in edits or apply_response(parent.source, edit, kind)[0] != child:
                    continue
            except (ProposalError, EditError, ValueError):
                continue
            edits.add(edit)
            rows.append({"prompt": state["prompt"], "completion": [{"role": "assistant", "content": edit}],
                         "meta": {**state["meta"], "operator": operator.name}})
    return rows


__all__ = ["WARMUP_FILE", "warmup_rows"]
