"""Turn a language model's answer into a child program, or into an error the model can act on.

The model answers with SEARCH/REPLACE blocks (the aider/OpenEvolve format) or with one full
rewrite in a fenced code block. Either way only the parent's EVOLVE-BLOCK may change: the text
outside it is kept byte for byte, whatever the model wrote there. Every failure is an
:class:`EditError` whose message is sent back to the model verbatim, so each message says what
went wrong *and* what to send instead; an edit that does not apply is never silently skipped
(docs/llm.md).
"""

from __future__ import annotations

import ast
import difflib
import re
import textwrap
from dataclasses import dataclass

from evosearch import kinds
from evosearch.program import ALLOWED_IMPORTS, BLOCK_END, BLOCK_START, split_block
from evosearch.propose.base import ProposalError, checked_child

_SEARCH_RE = re.compile(
    r"^[ \t]*<{5,9}[ \t]*SEARCH[^\n]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)^[ \t]*>{5,9}[ \t]*REPLACE\b[^\n]*$",
    re.MULTILINE | re.DOTALL,
)
_SEARCH_MARK_RE = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH\b", re.MULTILINE)
_FENCE_RE = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*([^\n`]*)$")
_START_RE = re.compile(r"^\s*#\s*EVOLVE-BLOCK-START\s*$")
_END_RE = re.compile(r"^\s*#\s*EVOLVE-BLOCK-END\s*$")
_MAX_SHOWN = 160  # characters of a quoted line in an error message


class EditError(ValueError):
    """The model's answer could not be turned into a valid child; the message goes back to the model verbatim."""


@dataclass(frozen=True)
class AppliedEdit:
    """A child made from a model's answer, with how it was read.

    ``mode`` is ``"diff"`` (SEARCH/REPLACE) or ``"rewrite"`` (a full code block). ``note`` says
    what was tolerated on the way (an indentation-insensitive match, text outside the markers
    that was ignored), for the proposal's lineage note; it is empty when the answer was exact.
    """

    child: str
    mode: str
    note: str = ""
    fuzzy: bool = False


def apply_response(parent_source: str, response: str, kind: str = "rule") -> tuple[str, str]:
    """Return ``(child_source, mode)`` made from ``response``, or raise :class:`EditError`.

    ``mode`` is ``"diff"`` or ``"rewrite"``. Use :func:`apply_response_detailed` to also learn
    whether a tolerant match was needed.
    """
    applied = apply_response_detailed(parent_source, response, kind)
    return applied.child, applied.mode


def apply_response_detailed(parent_source: str, response: str, kind: str = "rule") -> AppliedEdit:
    """Like :func:`apply_response`, with a note on anything tolerated (see :class:`AppliedEdit`)."""
    try:
        head, block, tail = split_block(parent_source)
    except ValueError as err:  # the parent is ours, not the model's: still an error, and a clear one
        raise EditError(f"the parent program has no usable EVOLVE-BLOCK ({err}); nothing can be edited") from err
    text = response.replace("\r\n", "\n").replace("\r", "\n")
    newline = "\r\n" if "\r\n" in block else "\n"

    if _SEARCH_MARK_RE.search(text):
        new_block, notes, fuzzy = _apply_search_replace(parent_source, head, block, text)
        mode = "diff"
    else:
        new_block, notes = _rewrite_block(head, text, kind)
        fuzzy = False
        mode = "rewrite"
    if newline == "\r\n":
        new_block = new_block.replace("\n", "\r\n")
    if new_block and not new_block.endswith(newline):
        new_block += newline
    child = head + new_block + tail
    if child == parent_source:
        raise EditError(
            "the edit changes nothing: the program you sent is identical to the parent. "
            "Propose an actual change to the code inside the EVOLVE-BLOCK."
        )
    try:
        checked_child(parent_source, child, kind)
    except ProposalError as err:
        raise EditError(str(err)) from err
    return AppliedEdit(child=child, mode=mode, note="; ".join(notes), fuzzy=fuzzy)


# --- SEARCH/REPLACE -------------------------------------------------------------------------


def _apply_search_replace(parent_source: str, head: str, block: str, text: str) -> tuple[str, list[str], bool]:
    """Apply each SEARCH/REPLACE pair in order to the block; return the new block, notes, and fuzziness."""
    pairs = [(m.group(1), m.group(2)) for m in _SEARCH_RE.finditer(text)]
    marks = len(_SEARCH_MARK_RE.findall(text))
    if len(pairs) != marks:
        raise EditError(
            f"found {marks} '<<<<<<< SEARCH' marker(s) but only {len(pairs)} complete block(s). Each block must be "
            "'<<<<<<< SEARCH', the lines to replace, a line '=======', the new lines, then a line "
            "'>>>>>>> REPLACE', each marker on its own line."
        )
    original = _lines(block)
    current = list(original)
    parent_lines = _lines(parent_source)
    offset = len(_lines(head))  # parent line index of the block's first line
    notes: list[str] = []
    fuzzy_any = False
    for number, (search_text, replace_text) in enumerate(pairs, start=1):
        search, replace = _strip_markers(_lines(search_text), _lines(replace_text), number)
        if not any(line.strip() for line in search):
            raise EditError(
                f"SEARCH block {number} is empty. A SEARCH must hold the exact existing lines to replace; "
                "to add code, SEARCH for a nearby line and REPLACE it with that line plus the new code."
            )
        exact = _find(current, search)
        hits, fuzzy = (exact, False) if exact else (_find_fuzzy(current, search), True)
        if len(hits) > 1:
            where = ", ".join(str(offset + i + 1) for i in hits)
            raise EditError(
                f"SEARCH block {number} matches the EVOLVE-BLOCK {len(hits)} times (program lines {where}), so it is "
                "ambiguous. Include more surrounding lines in the SEARCH so that it matches exactly once."
            )
        if not hits:
            raise EditError(_no_match_message(number, search, current, original, parent_lines, offset))
        start = hits[0]
        if fuzzy:
            replace = _reindent(replace, search, current[start:start + len(search)])
            fuzzy_any = True
            notes.append(f"SEARCH block {number} matched only when ignoring trailing whitespace and indentation")
        current[start:start + len(search)] = replace
    if current == original:
        raise EditError(
            "the edit changes nothing: every REPLACE is identical to its SEARCH. "
            "Propose an actual change to the code inside the EVOLVE-BLOCK."
        )
    return "".join(line + "\n" for line in current), notes, fuzzy_any


def _lines(text: str) -> list[str]:
    """Lines without their endings (a trailing newline does not make an extra empty line)."""
    text = text.replace("\r\n", "\n")
    if not text:
        return []
    parts = text.split("\n")
    return parts[:-1] if text.endswith("\n") else parts


def _strip_markers(search: list[str], replace: list[str], number: int) -> tuple[list[str], list[str]]:
    """Drop EVOLVE-BLOCK marker lines a model copied into both halves; refuse to add or remove one."""
    for pattern, at in ((_START_RE, 0), (_END_RE, -1)):
        s_has = bool(search) and bool(pattern.match(search[at]))
        r_has = bool(replace) and bool(pattern.match(replace[at]))
        if s_has and r_has:
            search = search[1:] if at == 0 else search[:-1]
            replace = replace[1:] if at == 0 else replace[:-1]
    for half, lines in (("SEARCH", search), ("REPLACE", replace)):
        if any(_START_RE.match(line) or _END_RE.match(line) for line in lines):
            raise EditError(
                f"{half} of block {number} contains an EVOLVE-BLOCK marker line. The markers must stay as they are: "
                f"SEARCH and REPLACE only lines strictly between '{BLOCK_START}' and '{BLOCK_END}'."
            )
    return search, replace


def _find(lines: list[str], search: list[str]) -> list[int]:
    """Start indices where ``search`` equals a contiguous run of ``lines``."""
    n = len(search)
    return [i for i in range(len(lines) - n + 1) if lines[i:i + n] == search]


def _normalise(lines: list[str]) -> list[str]:
    """Lines with trailing whitespace and their common indentation removed (blank lines become empty)."""
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    common = min(indents, default=0)
    return [line[common:].rstrip() if line.strip() else "" for line in lines]


def _find_fuzzy(lines: list[str], search: list[str]) -> list[int]:
    """Start indices where ``search`` matches up to trailing whitespace and one uniform indentation shift."""
    n, target = len(search), _normalise(search)
    return [i for i in range(len(lines) - n + 1) if _normalise(lines[i:i + n]) == target]


def _indent_of(lines: list[str]) -> str:
    """The leading whitespace of the least-indented non-blank line."""
    best: str | None = None
    for line in lines:
        if line.strip():
            lead = line[:len(line) - len(line.lstrip())]
            if best is None or len(lead) < len(best):
                best = lead
    return best or ""


def _reindent(replace: list[str], search: list[str], window: list[str]) -> list[str]:
    """Shift ``replace`` by the indentation difference between the model's SEARCH and the parent's lines."""
    old, new = len(_indent_of(search)), _indent_of(window)
    out = []
    for line in replace:
        if not line.strip():
            out.append("")
            continue
        lead = len(line) - len(line.lstrip())
        out.append(new + line[min(lead, old):].rstrip())
    return out


def _no_match_message(number: int, search: list[str], current: list[str], original: list[str],
                      parent_lines: list[str], offset: int) -> str:
    """Say why SEARCH block ``number`` matched nothing in the block, and point at the nearest text."""
    if _find(original, search) or _find_fuzzy(original, search):
        return (
            f"SEARCH block {number} matches the original EVOLVE-BLOCK but not the code after the earlier "
            "SEARCH/REPLACE blocks were applied: blocks apply in order, each to the result of the ones before it. "
            "Do not let two blocks touch the same lines; merge them into one block."
        )
    span = range(offset, offset + len(original))
    outside = [i for i in _find(parent_lines, search) or _find_fuzzy(parent_lines, search)
               if not (i in span and i + len(search) - 1 in span)]
    if outside:
        return (
            f"SEARCH block {number} matches program line {outside[0] + 1}, which is outside the EVOLVE-BLOCK. "
            f"Edits outside the EVOLVE-BLOCK are not allowed: only lines strictly between '{BLOCK_START}' and "
            f"'{BLOCK_END}' may change (the module docstring and the imports above the block are fixed)."
        )
    stripped = [line.strip() for line in current]
    missing = next((line for line in search if line.strip() and line.strip() not in stripped), None)
    if missing is None:
        return (
            f"SEARCH block {number} does not match the EVOLVE-BLOCK of the parent exactly once (0 matches): each of "
            "its lines exists, but not as one contiguous run in this order (or with different blank lines or "
            "indentation). Copy one contiguous run of lines exactly as it appears, including blank lines and "
            "indentation."
        )
    closest = difflib.get_close_matches(missing.strip(), [s for s in stripped if s], n=1, cutoff=0.0)
    hint = ""
    if closest:
        line = current[stripped.index(closest[0])]
        hint = f" The closest line in the parent's EVOLVE-BLOCK is: `{_shown(line)}`"
    return (
        f"SEARCH block {number} does not match the EVOLVE-BLOCK of the parent exactly once (0 matches): its line "
        f"`{_shown(missing)}` is not in the block. Copy the lines to replace exactly, including indentation, "
        f"from the current program.{hint}"
    )


def _shown(line: str) -> str:
    line = line.rstrip()
    return line if len(line) <= _MAX_SHOWN else line[:_MAX_SHOWN] + " ..."


# --- full rewrite ----------------------------------------------------------------------------


def _rewrite_block(head: str, text: str, kind: str) -> tuple[str, list[str]]:
    """The new block content from a full rewrite; the parent's text outside the block is the caller's."""
    entry = kinds.get(kind).entry_point  # what a complete program defines: picks the right code block
    code = _pick_code(text, entry)
    code = textwrap.dedent(code)
    lines = _lines(code)
    notes: list[str] = []
    starts = [i for i, line in enumerate(lines) if _START_RE.match(line)]
    ends = [i for i, line in enumerate(lines) if _END_RE.match(line)]
    if len(starts) > 1 or len(ends) > 1 or (starts and ends and ends[0] < starts[0]):
        raise EditError(
            f"the code has {len(starts)} '{BLOCK_START}' and {len(ends)} '{BLOCK_END}' marker lines (in that "
            "order they do not form one block). Send the EVOLVE-BLOCK once, with one START marker before it "
            "and one END marker after it, or send only the block's content without markers."
        )
    parent_imports = head_imports(head)
    if starts or ends:
        lo = starts[0] + 1 if starts else 0
        hi = ends[0] if ends else len(lines)
        outside_head = lines[:starts[0]] if starts else []
        body, outside_tail = lines[lo:hi], lines[hi + 1:]
        added = [imp for imp in head_imports("\n".join(outside_head) + "\n") if imp not in parent_imports]
        if added:
            raise EditError(_import_message(added, parent_imports))
        if not starts:  # only an END marker: what precedes it is the block, less what the head already has
            body = _drop_head_duplicates(body, parent_imports)
        elif _has_code(outside_head, parent_imports):
            notes.append("text above EVOLVE-BLOCK-START in the rewrite was ignored")
        if _has_code(outside_tail, parent_imports):
            notes.append("text below EVOLVE-BLOCK-END in the rewrite was ignored")
    else:
        body = _drop_head_duplicates(lines, parent_imports)
    body = _trim_blank(body)
    if not body:
        raise EditError(
            "the code block is empty once the text outside the EVOLVE-BLOCK is set aside. Send the full new "
            "content of the EVOLVE-BLOCK in one fenced python block."
        )
    if not re.search(rf"^def\s+{entry}\s*\(", "\n".join(body), re.MULTILINE):
        raise EditError(
            f"the code block does not define a top-level `{entry}(...)`, so it cannot be the whole EVOLVE-BLOCK. "
            "A full rewrite must contain everything between the markers (constants, helpers and "
            f"`{entry}`); to change only a few lines, answer with SEARCH/REPLACE blocks instead."
        )
    return "".join(line + "\n" for line in body), notes


def _pick_code(text: str, entry: str) -> str:
    """The code of the fenced block that defines ``entry`` (the last such), else the longest block."""
    blocks = _fenced_blocks(text)
    if not blocks:
        stripped = text.strip()
        if stripped and _parses(stripped) and re.search(r"^(def|import|from|[A-Za-z_]\w*\s*=)", stripped, re.M):
            return stripped + "\n"  # bare code with no fence at all
        raise EditError(
            "no code found: answer with SEARCH/REPLACE blocks or one fenced python block (```python ... ```) "
            "holding the new content of the EVOLVE-BLOCK."
        )
    defining = [b for b in blocks if re.search(rf"^\s*def\s+{entry}\s*\(", b, re.MULTILINE)]
    if defining:
        return defining[-1]
    return max(blocks, key=len)


def _fenced_blocks(text: str) -> list[str]:
    """Contents of the fenced blocks in ``text`` (``` or ~~~, any info string; an unclosed last one runs to the end)."""
    blocks: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE_RE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group(2)
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = _FENCE_RE.match(lines[i])
            if closing and closing.group(2)[0] == fence[0] and len(closing.group(2)) >= len(fence) \
                    and not closing.group(3).strip():
                break
            body.append(lines[i])
            i += 1
        i += 1
        content = "\n".join(body).strip("\n")
        if content.strip():
            blocks.append(content + "\n")
    return blocks


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _import_key(node: ast.stmt) -> str:
    return ast.unparse(node)


def head_imports(code: str) -> list[str]:
    """Normalised top-level import statements of ``code`` (line-based when it does not parse).

    Used on a parent's text above its EVOLVE-BLOCK: what a rewrite may take for granted, and
    what the prompt tells the model is already imported.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return [line.strip() for line in code.splitlines() if re.match(r"\s*(import|from)\s+\w", line)]
    return [_import_key(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]


def _drop_head_duplicates(lines: list[str], parent_imports: list[str]) -> list[str]:
    """``lines`` less a leading module docstring and the top-level imports the parent's head already has.

    Other imports stay, inside the block, where the static check judges them.
    """
    code = "\n".join(lines) + "\n"
    try:
        tree = ast.parse(code)
    except SyntaxError:  # keep the text; the static check will report the syntax error to the model
        return [line for line in lines if line.strip() not in parent_imports]
    drop: set[int] = set()
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        drop.update(range(body[0].lineno - 1, body[0].end_lineno or body[0].lineno))
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and _import_key(node) in parent_imports:
            drop.update(range(node.lineno - 1, node.end_lineno or node.lineno))
    return [line for i, line in enumerate(lines) if i not in drop]


def _has_code(lines: list[str], parent_imports: list[str]) -> bool:
    """Whether ``lines`` hold anything beyond blank lines, comments, a docstring and the parent's imports."""
    rest = _drop_head_duplicates(lines, parent_imports)
    return any(line.strip() and not line.strip().startswith("#") for line in rest)


def _trim_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _import_message(added: list[str], parent_imports: list[str]) -> str:
    """Why new imports above the block are refused, and what the model can do instead."""
    have = ", ".join(f"`{imp}`" for imp in parent_imports) or "nothing"
    allowed = ", ".join(sorted(ALLOWED_IMPORTS))
    banned = [imp for imp in added if not _import_allowed(imp)]
    message = (
        f"the rewrite adds {', '.join(f'`{imp}`' for imp in added)} outside the EVOLVE-BLOCK, and the text outside "
        f"the block cannot change. Imported outside the block already: {have}."
    )
    if banned:
        message += (f" {', '.join(f'`{imp}`' for imp in banned)} is not allowed anywhere in a program "
                    f"(allowed modules: {allowed}).")
    if len(banned) < len(added):
        message += (f" To use another allowed module, put its import line inside the EVOLVE-BLOCK (right after "
                    f"'{BLOCK_START}'); allowed modules: {allowed}.")
    return message


def _import_allowed(statement: str) -> bool:
    """Whether every module an import statement names is on the static check's allow-list."""
    try:
        node = ast.parse(statement).body[0]
    except (SyntaxError, IndexError):
        return False
    if isinstance(node, ast.Import):
        return all(alias.name in ALLOWED_IMPORTS for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return not node.level and node.module in ALLOWED_IMPORTS
    return False
