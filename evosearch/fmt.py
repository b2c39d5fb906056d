"""Numbers and text as evosearch shows them: finite values, scores, changes, CIs, durations, safe text.

Scores, confidence intervals and durations appear in the terminal, in logs, in exported
headers and in the report; they are formatted here so they read the same everywhere. A
missing or non-finite value shows as ``-``, never as ``nan``; a value that rounds to zero
never shows as ``-0.000``. Text a candidate wrote (its output, its error, an LLM's note)
reaches a terminal only through :func:`terminal_text`.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from typing import Any

MISSING = "-"


def finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number, else None (None, NaN, infinities, text, ...).

    The archive never stores NaN, JSON has no way to write it, and a score that is not a
    number is no score: every reader and writer of scores goes through this.
    """
    if not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def score(value: Any, digits: int = 3) -> str:
    """A score, or any number shown with fixed decimals: ``digits`` of them, ``-`` if it is not finite.

    Never ``-0.000``: a small negative that rounds to zero shows as zero.
    """
    x = finite(value)
    if x is None:
        return MISSING
    text = f"{x:.{digits}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


def signed(value: Any, digits: int = 3) -> str:
    """A change, such as a child's score minus its parent's: ``+0.200``, ``-0.100``, ``0.000`` for none."""
    text = score(value, digits)
    return "+" + text if text != MISSING and float(text) > 0 else text


def ci(low: Any, high: Any, digits: int = 3) -> str:
    """A confidence interval as ``[low, high]``, ``-`` unless both ends are finite numbers."""
    if finite(low) is None or finite(high) is None:
        return MISSING
    return f"[{score(low, digits)}, {score(high, digits)}]"


def duration(seconds: Any) -> str:
    """A duration for people: ``0.2 s``, ``42 s``, ``3 min 05 s``, ``2 h 07 min``; ``-`` if unknown.

    Under ten seconds it keeps one decimal, so a fast job reads ``0.2 s``, not ``0 s``.
    """
    s = finite(seconds)
    if s is None or s < 0:
        return MISSING
    if round(s, 1) < 10:
        return f"{s:.1f} s"
    whole = round(s)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    minutes = round(s / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def clock(seconds: Any) -> str:
    """Elapsed time as ``H:MM:SS`` (whole seconds, cut not rounded: a clock does not run ahead); ``-`` if unknown."""
    s = finite(seconds)
    if s is None:
        return MISSING
    whole = int(s)
    return f"{whole // 3600:d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# -- text for terminals ----------------------------------------------------------------------------

#: What stands in for a character a terminal would act on, or that would disguise the text around it.
REPLACEMENT = "\ufffd"

# Sequences a terminal obeys instead of showing, removed whole: CSI (colours, cursor moves, clear
# screen) in its 7-bit (ESC [) and C1 (0x9b) forms; the string controls OSC (window title,
# hyperlinks, clipboard), DCS, SOS, PM and APC up to their terminator (BEL or ST) or the end of the
# text; and the short escapes (ESC c resets the terminal, ESC ( B, ESC 7, ...). Each part is linear:
# no nested repetition, so a hostile tail cannot make the match slow.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)
# Everything outside printable ASCII is looked at one by one (a fast path for the usual text).
_SUSPECT_ONE_LINE = re.compile(r"[^\x20-\x7e]")
_SUSPECT_MULTILINE = re.compile(r"[^\t\n\x20-\x7e]")
# Controls (C0, DEL, C1), format characters (bidi overrides and isolates, zero-width characters, the
# soft hyphen, ...) and lone surrogates (which cannot even be encoded for the terminal).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_LINE_BREAKS = frozenset({"\r", "\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"})


def terminal_text(text: Any, *, multiline: bool = False) -> str:
    """``text`` made safe to print on a terminal: shown as characters, never obeyed as controls.

    Candidates write their output, their errors and (through an LLM) their notes; printed as they
    are, an escape sequence clears the screen or draws a fake score, and a bidi override shows
    text in another order than it is stored. So escape sequences (7-bit and C1) are removed
    whole, and any other control, format or surrogate character becomes U+FFFD, which shows that
    something was there. Line breaks (CR LF, CR, VT, FF, NEL, U+2028/9) become ``\\n`` with
    ``multiline`` (an output tail, a traceback, source code; tabs stay too), else a space (a
    table cell or a progress line, where a line break could start a forged line). ``None``
    reads as an empty string, anything else as ``str(text)``. Data written for programs (JSON,
    files) keeps the exact text; this is for people's screens only.
    """
    text = "" if text is None else str(text)
    text = _ESCAPE_SEQUENCE.sub("", text.replace("\r\n", "\n"))
    suspect = _SUSPECT_MULTILINE if multiline else _SUSPECT_ONE_LINE
    return suspect.sub(lambda m: _safe_char(m.group(), multiline), text)


def _safe_char(char: str, multiline: bool) -> str:
    """One character outside printable ASCII: itself if a terminal only shows it, else its stand-in."""
    if char in _LINE_BREAKS:
        return "\n" if multiline else " "
    if char == "\t":
        return "\t" if multiline else " "
    return REPLACEMENT if unicodedata.category(char) in _UNSAFE_CATEGORIES else char


__all__ = ["MISSING", "REPLACEMENT", "ci", "clock", "duration", "finite", "score", "signed", "terminal_text"]
