"""A parent-to-child change written as the SEARCH/REPLACE answer the LLM proposer asks for.

A proposer LLM learns from archived (parent, child) pairs only if each child is shown as the
answer the model would have had to give: the blocks of ``propose/prompts/edit_diff.txt``,
which :func:`evosearch.propose.llm_edits.apply_response` turns back into the child. The blocks
follow the applier's rules, not a unified diff's: each SEARCH is whole lines copied exactly
from the EVOLVE-BLOCK *as the blocks before it left it* (they apply in order), matches there
exactly once, and holds at least one non-blank line; marker lines never appear. Changes a few
lines apart become one block, and each block carries a line of context on either side, more
where that is needed to make its SEARCH unique, so the target reads like a careful answer.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from evosearch.program import split_block

SEARCH_MARK = "<<<<<<< SEARCH"
DIVIDER = "======="
REPLACE_MARK = ">>>>>>> REPLACE"

CONTEXT_LINES = 1  # unchanged lines shown on each side of a change, before any needed for uniqueness
MERGE_GAP = 2 * CONTEXT_LINES  # changes at most this many unchanged lines apart share one block

# Lines the answer's parser would read as structure, not code (llm_edits' patterns, anchored to a whole line).
_STRUCTURE_RE = re.compile(
    r"^[ \t]*(<{5,9}[ \t]*SEARCH\b.*|={5,9}[ \t]*|>{5,9}[ \t]*REPLACE\b.*|#\s*EVOLVE-BLOCK-(START|END)\s*)$")


@dataclass(frozen=True)
class _Hunk:
    """Parent lines ``[i1, i2)`` of the block become child lines ``[j1, j2)``."""

    i1: int
    i2: int
    j1: int
    j2: int


def render_edit(parent_source: str, child_source: str) -> str:
    """SEARCH/REPLACE blocks that turn ``parent_source`` into ``child_source`` under ``apply_response``.

    Raises ValueError when the child is no such edit of the parent: either lacks one
    EVOLVE-BLOCK, the two differ outside it, they are identical, or a line could not be
    written in the format (a line the parser would take for a marker, a lone carriage return,
    mixed line endings, or an insertion into a block with no non-blank line to anchor it).
    """
    p_head, p_block, p_tail = _split(parent_source, "parent")
    c_head, c_block, c_tail = _split(child_source, "child")
    if (p_head, p_tail) != (c_head, c_tail):
        raise ValueError("the child differs from the parent outside the EVOLVE-BLOCK")
    if p_block == c_block:
        raise ValueError("the child is identical to the parent: there is no edit to render")
    old, new = _lines(p_block, "parent"), _lines(c_block, "child")
    newline = "\r\n" if "\r\n" in p_block else "\n"
    if "".join(line + newline for line in new) != c_block:
        raise ValueError("the child's EVOLVE-BLOCK uses other line endings than the parent's")
    blocks = _blocks(old, new)
    return "\n\n".join(_format(search, replace) for search, replace in blocks) + "\n"


def _split(source: str, which: str) -> tuple[str, str, str]:
    try:
        return split_block(source)
    except ValueError as err:
        raise ValueError(f"the {which} has no single EVOLVE-BLOCK ({err})") from err


def _lines(block: str, which: str) -> list[str]:
    """The block's lines without endings, refusing what the answer's parser would split or misread."""
    text = block.replace("\r\n", "\n")
    lines = text.split("\n")[:-1] if text else []
    for number, line in enumerate(lines, start=1):
        if "\r" in line:
            raise ValueError(f"line {number} of the {which}'s EVOLVE-BLOCK holds a lone carriage return")
        if _STRUCTURE_RE.match(line):
            raise ValueError(f"line {number} of the {which}'s EVOLVE-BLOCK reads as a SEARCH/REPLACE or block "
                             f"marker: {line.strip()!r}")
    return lines


def _hunks(old: list[str], new: list[str]) -> list[_Hunk]:
    """The changed regions, in order, those at most MERGE_GAP unchanged lines apart joined into one."""
    hunks: list[_Hunk] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if hunks and i1 - hunks[-1].i2 <= MERGE_GAP:
            hunks[-1] = _Hunk(hunks[-1].i1, i2, hunks[-1].j1, j2)
        else:
            hunks.append(_Hunk(i1, i2, j1, j2))
    return hunks


def _blocks(old: list[str], new: list[str]) -> list[tuple[list[str], list[str]]]:
    """(SEARCH, REPLACE) line lists, each chosen against the block as the blocks before it left it.

    After the blocks above a change are applied, the working text is the child's lines up to the
    last applied change followed by the parent's from there on, so a change at parent line ``i``
    sits at ``i + delta``. The result is replayed as the applier would and checked to be the child.
    """
    current = list(old)
    delta = 0
    blocks = []
    for hunk in _hunks(old, new):
        start, end = hunk.i1 + delta, hunk.i2 + delta
        lo, hi = _window(current, start, end)
        search = current[lo:hi]
        replace = current[lo:start] + new[hunk.j1:hunk.j2] + current[end:hi]
        blocks.append((search, replace))
        current[lo:hi] = replace
        delta += (hunk.j2 - hunk.j1) - (hunk.i2 - hunk.i1)
    if current != new:  # cannot happen if the above is right; a wrong training target must never be written
        raise AssertionError("rendered SEARCH/REPLACE blocks do not reproduce the child")
    return blocks


def _window(current: list[str], start: int, end: int) -> tuple[int, int]:
    """The lines ``[lo, hi)`` around ``[start, end)`` to SEARCH for: some context, grown until unique.

    Grows one line at a time, above and below in turn, until the SEARCH holds a non-blank line
    and matches exactly once; the whole working text always matches once, so it ends unless the
    text has no non-blank line at all.
    """
    lo, hi = max(0, start - CONTEXT_LINES), min(len(current), end + CONTEXT_LINES)
    above = True
    while not _usable(current, lo, hi):
        if lo == 0 and hi == len(current):
            raise ValueError("the change cannot be anchored: the parent's EVOLVE-BLOCK has no non-blank line near it")
        if (above and lo > 0) or hi == len(current):
            lo -= 1
        else:
            hi += 1
        above = not above
    return lo, hi


def _usable(current: list[str], lo: int, hi: int) -> bool:
    """Whether ``current[lo:hi]`` is a SEARCH the applier accepts: a non-blank line, exactly one match."""
    search = current[lo:hi]
    if not any(line.strip() for line in search):
        return False
    n = len(search)
    return sum(1 for i in range(len(current) - n + 1) if current[i:i + n] == search) == 1


def _format(search: list[str], replace: list[str]) -> str:
    body = [SEARCH_MARK, *search, DIVIDER, *replace, REPLACE_MARK]
    return "\n".join(body)


__all__ = ["render_edit"]
