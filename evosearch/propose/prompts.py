"""Prompts for the LLM proposer: the program contract, the parent and its feedback, inspirations.

The wording lives in plain-text templates in ``evosearch/propose/prompts/`` so users can edit
it without touching code: point a config at a directory holding the files to override, and
every file missing there falls back to the packaged one. Templates use :class:`string.Template`
placeholders (``$parent_source``) because the prompts are full of Python code, whose braces
would clash with ``str.format``. A file may hold several variants separated by a line
``---variant---``; the caller's ``rng`` picks one, and also picks which "ideas to try" are shown
and in what order, so repeated calls on one parent do not send one identical prompt (which
would invite one identical answer). Every template is checked when loaded: an unknown or
malformed placeholder is an error naming the file, not a ``KeyError`` in the middle of a run.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field
from pathlib import Path

from evosearch import fmt, kinds
from evosearch.program import BLOCK_START, split_block
from evosearch.propose.base import Parent
from evosearch.propose.llm_edits import head_imports

#: Where the packaged templates live.
PACKAGED_DIR = Path(__file__).with_name("prompts")

#: The line that separates variants inside one template file.
VARIANT_SEPARATOR = "---variant---"

#: The error to pass to :func:`retry_message` when the child duplicates an archived program.
DUPLICATE_ERROR = (
    "this program behaves exactly like one already evaluated (same gradients on the probe batch, so the same "
    "training), so it was not evaluated again; propose a different change, one that alters what the program "
    "computes rather than how it is written."
)

#: Template file -> (placeholders it may use, placeholders it must use).
TEMPLATE_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "system.txt": (frozenset({"contract", "scoring", "edit_rules"}), frozenset({"contract", "edit_rules"})),
    "contract_rule.txt": (frozenset({"allowed_imports"}), frozenset()),
    "contract_policy.txt": (frozenset({"allowed_imports"}), frozenset()),
    "scoring_rule.txt": (frozenset(), frozenset()),
    "scoring_policy.txt": (frozenset(), frozenset()),
    "edit_diff.txt": (frozenset({"allowed_imports"}), frozenset()),
    "edit_rewrite.txt": (frozenset({"allowed_imports", "entry"}), frozenset()),
    "user.txt": (frozenset({"parent_section", "inspirations_section", "ideas_section", "instruction"}),
                 frozenset({"parent_section", "instruction"})),
    "parent.txt": (frozenset({"parent_source", "score", "feedback", "head_imports"}), frozenset({"parent_source"})),
    "feedback.txt": (frozenset({"details"}), frozenset({"details"})),
    "inspirations.txt": (frozenset({"inspirations"}), frozenset({"inspirations"})),
    "inspiration.txt": (frozenset({"index", "source", "score", "summary"}), frozenset({"source"})),
    "ideas.txt": (frozenset({"ideas"}), frozenset({"ideas"})),
    "instruction_diff.txt": (frozenset({"focus"}), frozenset()),
    "instruction_rewrite.txt": (frozenset({"focus"}), frozenset()),
    "retry.txt": (frozenset({"error", "attempt", "max_attempts", "attempts_left"}), frozenset({"error"})),
}
#: Plain lists, one item per line ('#' starts a comment line): the "ideas to try" per kind.
LIST_FILES = ("ideas_rule.txt", "ideas_policy.txt")

EDIT_FORMATS = ("diff", "rewrite")
ERROR_CHARS, ERROR_LINES = 2500, 40  # how much of a traceback the model sees (its tail)
OUTPUT_CHARS, OUTPUT_LINES = 1500, 25  # how much of the job's output the model sees (its tail)
IDEAS_SHOWN = (3, 5)  # how many ideas one prompt lists, at least and at most

_EMPTY = "\x00empty-section\x00"  # stands in for an absent section, removed with its line afterwards


class TemplateError(ValueError):
    """A prompt template is malformed or uses a placeholder that does not exist (the message names the file)."""


@dataclass
class Feedback:
    """What the evaluator said about a program, as the model will read it.

    ``task_scores`` holds the normalised mean return per task; ``curve_summary`` is one line
    per task (see :meth:`curve_summary_from`). Only what is set is shown.
    """

    outcome: str
    stage: str = ""
    score: float | None = None
    ci: tuple[float, float] | None = None
    error: str = ""
    output_tail: str = ""
    task_scores: dict[str, float] = field(default_factory=dict)
    curve_summary: str = ""

    @staticmethod
    def curve_summary_from(curves: dict[str, list[float]]) -> str:
        """One line per task: the normalised curve at 25%, 50% and 100% of training.

        ``curves`` maps a task to its learning curve, normalised and averaged over seeds, at
        evenly spaced points of training. Three points say whether a rule learns late, early or
        collapses, which a final score alone hides, at a few tokens per task.
        """
        lines = []
        for task, curve in curves.items():
            n = len(curve)
            if not n:
                lines.append(f"{task}: no learning curve")
                continue
            indices = sorted({max(0, math.ceil(f * n) - 1) for f in (0.25, 0.5, 1.0)})
            values = " -> ".join(fmt.score(curve[i], 2) for i in indices)
            at = "/".join(str(round(100 * (i + 1) / n)) for i in indices)
            lines.append(f"{task}: {values} (normalised, at {at}% of training)")
        return "\n".join(lines)


@dataclass(frozen=True)
class PromptTemplates:
    """Loaded, checked templates: variants per template file, items per list file, and where each came from."""

    variants: dict[str, list[string.Template]]
    lists: dict[str, list[str]]
    origin: dict[str, Path]

    def pick(self, name: str, rng: random.Random | None) -> string.Template:
        """One variant of ``name``, chosen by ``rng`` (the first when there is no rng)."""
        options = self.variants[name]
        return options[rng.randrange(len(options))] if rng is not None and len(options) > 1 else options[0]


def load_templates(template_dir: str | Path | None = None) -> PromptTemplates:
    """Read and check every template, from ``template_dir`` where present, else from the package.

    Call it when a config is loaded to fail early: any problem raises :class:`TemplateError`.
    """
    user_dir = Path(template_dir) if template_dir is not None else None
    if user_dir is not None:
        if not user_dir.is_dir():
            raise TemplateError(f"prompt template directory {user_dir} does not exist")
        known = set(TEMPLATE_FIELDS) | set(LIST_FILES)
        unknown = sorted(p.name for p in user_dir.glob("*.txt") if p.name not in known)
        if unknown:
            raise TemplateError(
                f"unknown prompt template file(s) in {user_dir}: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
    variants: dict[str, list[string.Template]] = {}
    lists: dict[str, list[str]] = {}
    origin: dict[str, Path] = {}
    for name in (*TEMPLATE_FIELDS, *LIST_FILES):
        path = user_dir / name if user_dir is not None and (user_dir / name).is_file() else PACKAGED_DIR / name
        origin[name] = path
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        if name in LIST_FILES:
            lists[name] = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        else:
            variants[name] = _parse_variants(path, text, *TEMPLATE_FIELDS[name])
    return PromptTemplates(variants=variants, lists=lists, origin=origin)


def _parse_variants(path: Path, text: str, allowed: frozenset[str], required: frozenset[str]) -> list[string.Template]:
    """Split ``text`` into variants and check each one's placeholders."""
    chunks: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip() == VARIANT_SEPARATOR:
            chunks.append([])
        else:
            chunks[-1].append(line)
    out = []
    for number, chunk in enumerate(chunks, start=1):
        body = "\n".join(chunk).strip("\n")
        where = f"{path}" + (f" (variant {number})" if len(chunks) > 1 else "")
        if not body.strip():
            raise TemplateError(f"prompt template {where} is empty")
        template = string.Template(body)
        used: set[str] = set()
        for match in template.pattern.finditer(body):
            if match.group("invalid") is not None:
                line = body.count("\n", 0, match.start("invalid")) + 1
                raise TemplateError(
                    f"prompt template {where} line {line}: a '$' not followed by a placeholder name; "
                    "write '$$' for a literal dollar sign"
                )
            name = match.group("named") or match.group("braced")
            if name is not None:
                used.add(name)
        unknown = used - allowed
        if unknown:
            raise TemplateError(
                f"prompt template {where} uses unknown placeholder(s) "
                f"{', '.join('$' + u for u in sorted(unknown))}; "
                f"allowed here: {', '.join('$' + a for a in sorted(allowed)) or 'none'}"
            )
        missing = required - used
        if missing:
            raise TemplateError(
                f"prompt template {where} must use {', '.join('$' + m for m in sorted(missing))}"
            )
        out.append(template)
    return out


def build_messages(
    *,
    kind: str,
    parent: Parent,
    feedback: Feedback | None,
    inspirations: list[tuple[Parent, Feedback | None]],
    rng: random.Random,
    template_dir: Path | None = None,
    edit_format: str = "diff",
    max_inspirations: int = 3,
) -> list[dict]:
    """OpenAI chat messages ``[system, user]`` asking for one edit of ``parent``.

    The system message is the contract for ``kind``, what the score means, and the answer
    format; the user message is the parent with its evaluation, up to ``max_inspirations``
    other programs, a few ideas, and the instruction. Same ``rng`` state, same messages.
    """
    entry = kinds.get(kind).entry_point  # a ValueError names the known kinds
    if edit_format not in EDIT_FORMATS:
        raise ValueError(f"unknown edit format {edit_format!r} (expected one of {', '.join(EDIT_FORMATS)})")
    t = load_templates(template_dir)
    allowed = ", ".join(sorted(kinds.get(kind).allowed_imports))

    system = t.pick("system.txt", rng).substitute(
        contract=t.pick(f"contract_{kind}.txt", rng).substitute(allowed_imports=allowed),
        scoring=t.pick(f"scoring_{kind}.txt", rng).substitute(),
        edit_rules=t.pick(f"edit_{edit_format}.txt", rng).substitute(allowed_imports=allowed, entry=f"{entry}(...)"),
    )

    score = feedback.score if feedback is not None and feedback.score is not None else parent.score
    ci = feedback.ci if feedback is not None else None
    feedback_text = (t.pick("feedback.txt", rng).substitute(details=_feedback_details(feedback, kind))
                     if feedback is not None else _EMPTY)
    parent_section = t.pick("parent.txt", rng).substitute(
        parent_source=parent.source.rstrip("\n"),
        score=_score_text(score, ci),
        feedback=feedback_text,
        head_imports=_head_imports_text(parent.source),
    )

    shown = inspirations[:max(0, max_inspirations)]
    if shown:
        items = [
            t.pick("inspiration.txt", rng).substitute(
                index=str(i),
                source=other.source.rstrip("\n"),
                score=_score_text(_score_of(other, fb), fb.ci if fb is not None else None),
                summary=_inspiration_summary(fb) or _EMPTY,
            )
            for i, (other, fb) in enumerate(shown, start=1)
        ]
        inspirations_section = t.pick("inspirations.txt", rng).substitute(inspirations="\n\n".join(items))
    else:
        inspirations_section = _EMPTY

    ideas = t.lists[f"ideas_{kind}.txt"]
    if ideas:
        count = min(len(ideas), rng.randint(*IDEAS_SHOWN))
        ideas_section = t.pick("ideas.txt", rng).substitute(
            ideas="\n".join(f"- {idea}" for idea in rng.sample(ideas, count)))
    else:
        ideas_section = _EMPTY

    instruction = t.pick(f"instruction_{edit_format}.txt", rng).substitute(focus=_focus(feedback))
    instruction = instruction.replace("\n ", "\n").lstrip(" ")  # an empty $focus leaves a leading space
    user = t.pick("user.txt", rng).substitute(
        parent_section=parent_section,
        inspirations_section=inspirations_section,
        ideas_section=ideas_section,
        instruction=instruction,
    )
    return [{"role": "system", "content": _tidy(system)}, {"role": "user", "content": _tidy(user)}]


def retry_message(error: str, attempt: int, max_attempts: int, *, rng: random.Random | None = None,
                  template_dir: Path | None = None) -> dict:
    """The user message sent back after a failed attempt: the reason verbatim, and how many tries remain.

    ``error`` is an :class:`~evosearch.propose.llm_edits.EditError` message, a static-check
    failure, or :data:`DUPLICATE_ERROR` when the child behaves like an archived program.
    ``attempt`` counts from 1 and is the attempt that just failed.
    """
    left = max(0, max_attempts - attempt)
    if left == 0:
        attempts_left = "This was the last attempt."
    elif left == 1:
        attempts_left = "You have one attempt left."
    else:
        attempts_left = f"You have {left} attempts left."
    content = load_templates(template_dir).pick("retry.txt", rng).substitute(
        error=error.strip(), attempt=str(attempt), max_attempts=str(max_attempts), attempts_left=attempts_left)
    return {"role": "user", "content": _tidy(content)}


# --- rendering helpers ------------------------------------------------------------------------


def _score_text(score: float | None, ci: tuple[float, float] | None) -> str:
    if score is None:
        return "none (not scored)"
    if ci is None:
        return fmt.score(score)
    return f"{fmt.score(score)} (95% CI {fmt.score(ci[0])} to {fmt.score(ci[1])})"


def _score_of(parent: Parent, feedback: Feedback | None) -> float | None:
    return feedback.score if feedback is not None and feedback.score is not None else parent.score


def _tail(text: str, max_chars: int, max_lines: int) -> str:
    """The end of ``text`` (where a traceback says what failed), saying how much was cut."""
    text = text.strip("\n")
    lines = text.split("\n")
    cut_lines = max(0, len(lines) - max_lines)
    kept = "\n".join(lines[cut_lines:])
    if len(kept) > max_chars:
        kept = kept[-max_chars:]
        kept = kept[kept.find("\n") + 1:] if "\n" in kept else kept
    if kept != text:
        return f"[... {len(text) - len(kept)} earlier characters cut]\n{kept}"
    return kept


def _fence(text: str) -> str:
    """Wrap ``text`` in a fence longer than any backtick run inside it."""
    longest = max((len(run) for run in text.split("\n") if set(run.strip()) == {"`"}), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _feedback_details(feedback: Feedback, kind: str) -> str:
    reference = kinds.get(kind).reference
    lines = [f"Outcome: {feedback.outcome}" + (f" (stage: {feedback.stage})" if feedback.stage else "")]
    if feedback.score is not None:
        lines.append(f"Score: {_score_text(feedback.score, feedback.ci)}")
    if feedback.task_scores:
        per_task = ", ".join(f"{task} {fmt.score(v)}" for task, v in feedback.task_scores.items())
        lines.append(f"Per-task scores (normalised; 0 = random, 1.0 = {reference}): {per_task}")
    if feedback.curve_summary.strip():
        lines.append("Learning curves:\n" + feedback.curve_summary.strip("\n"))
    if feedback.error.strip():
        lines.append("Error:\n" + _fence(_tail(feedback.error, ERROR_CHARS, ERROR_LINES)))
    if feedback.output_tail.strip():
        lines.append("End of the job's output:\n" + _fence(_tail(feedback.output_tail, OUTPUT_CHARS, OUTPUT_LINES)))
    return "\n".join(lines)


def _inspiration_summary(feedback: Feedback | None) -> str:
    if feedback is None or not feedback.task_scores:
        return ""
    return "Per-task scores: " + ", ".join(f"{task} {fmt.score(v)}" for task, v in feedback.task_scores.items())


def _head_imports_text(source: str) -> str:
    try:
        head = split_block(source)[0]
    except ValueError:
        return ""
    imports = head_imports(head)
    if imports:
        return (f"Imported above the EVOLVE-BLOCK (fixed): {', '.join(f'`{i}`' for i in imports)}. "
                f"Any other allowed import goes inside the block.")
    return (f"Nothing is imported above the EVOLVE-BLOCK: to use torch (or another allowed module), "
            f"add `import torch` inside the block, after `{BLOCK_START}`.")


def _focus(feedback: Feedback | None) -> str:
    if feedback is None or feedback.outcome == "ok":
        return ""
    stage = f" at the {feedback.stage} stage" if feedback.stage else ""
    return (f"The current program failed ({feedback.outcome}{stage}; see its evaluation above): fix the cause "
            "first, keeping its idea if the idea is sound.")


def _tidy(text: str) -> str:
    """Drop the lines of absent sections (and one blank line after each), and surrounding blank lines."""
    out: list[str] = []
    skip_blank = False
    for line in text.split("\n"):
        if line.strip() == _EMPTY:
            skip_blank = True
            continue
        if skip_blank and not line.strip():
            skip_blank = False
            continue
        skip_blank = False
        out.append(line.replace(_EMPTY, ""))
    return "\n".join(out).strip("\n") + "\n"
