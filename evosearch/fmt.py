"""Numbers as evosearch stores and shows them: finite values, scores, changes, CIs, durations.

Scores, confidence intervals and durations appear in the terminal, in logs, in exported
headers and in the report; they are formatted here so they read the same everywhere. A
missing or non-finite value shows as ``-``, never as ``nan``; a value that rounds to zero
never shows as ``-0.000``.
"""

from __future__ import annotations

import math
import numbers
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


__all__ = ["MISSING", "ci", "clock", "duration", "finite", "score", "signed"]
