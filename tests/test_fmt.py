"""``evosearch.fmt``: one way to show a score, a CI, a duration; one definition of a finite number."""

from __future__ import annotations

import math
import time
import unicodedata

import numpy as np
import pytest

from evosearch import fmt


def test_finite():
    assert fmt.finite(1) == 1.0 and isinstance(fmt.finite(1), float)
    assert fmt.finite(np.float32(0.5)) == 0.5 and fmt.finite(np.int64(3)) == 3.0
    for value in (None, math.nan, math.inf, -math.inf, "1.0", [1.0]):
        assert fmt.finite(value) is None


@pytest.mark.parametrize(("value", "digits", "text"), [
    (1.23456, 3, "1.235"), (-1.5, 1, "-1.5"), (0.0, 3, "0.000"), (-0.0, 3, "0.000"),
    (-0.0004, 3, "0.000"), (-0.001, 2, "0.00"), (-0.004, 2, "0.00"), (-0.005001, 2, "-0.01"),  # never "-0.00"
    (None, 3, "-"), (math.nan, 3, "-"), (math.inf, 2, "-"), (7, 1, "7.0"),
])
def test_score(value, digits, text):
    assert fmt.score(value, digits) == text


def test_ci():
    assert fmt.ci(0.1, 0.25) == "[0.100, 0.250]"
    assert fmt.ci(-0.0001, 0.5, 2) == "[0.00, 0.50]"
    assert fmt.ci(None, 0.5) == fmt.ci(0.1, math.nan) == "-"


@pytest.mark.parametrize(("seconds", "text"), [
    (0.198, "0.2 s"), (0.0, "0.0 s"), (9.94, "9.9 s"), (9.96, "10 s"), (42.4, "42 s"), (59.6, "1 min 00 s"),
    (185, "3 min 05 s"), (3599.6, "1 h 00 min"), (7620, "2 h 07 min"), (None, "-"), (math.nan, "-"), (-1, "-"),
])
def test_duration(seconds, text):
    assert fmt.duration(seconds) == text


def test_clock():
    assert fmt.clock(3725.9) == "1:02:05" and fmt.clock(0) == "0:00:00" and fmt.clock(None) == "-"


def test_signed():
    assert [fmt.signed(v) for v in (0.2, -0.1, -0.0001, 0.0, None)] == ["+0.200", "-0.100", "0.000", "0.000", "-"]


# -- terminal_text: what a candidate wrote, made safe to show -------------------------------------

#: Everything a hostile program or LLM answer might put in its text to act on a terminal or disguise itself.
HOSTILE = ("\x1b[2J\x1b[H"  # clear the screen, cursor home
           "\x1b]0;pwned\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"  # window title, a hyperlink
           "score \x1b[1;32m9.999\x1b[0m"  # a coloured fake score
           "\x9b31m\x9d2;title\x9c"  # the same in C1 form
           "\x1bc\x1b(B\x1b7"  # reset the terminal, charset, save cursor
           "\u202eeulav\u202c \u2066x\u2069 zero\u200bwidth soft\u00adhyphen \ufeffbom \x00\x07\x08\x7f\x85 "
           "\ud800 [/red]")


def _unsafe(text: str) -> list[str]:
    return [c for c in text if c not in "\n\t" and (c == "\x1b" or "\x80" <= c <= "\x9f" or c < " " or c == "\x7f"
                                                     or unicodedata.category(c) in ("Cf", "Cs"))]


@pytest.mark.parametrize("multiline", [False, True])
def test_terminal_text_leaves_nothing_a_terminal_obeys(multiline):
    shown = fmt.terminal_text(HOSTILE, multiline=multiline)
    assert _unsafe(shown) == []
    assert "score 9.999" in shown and "link" in shown and "[/red]" in shown  # the words stay, as plain text
    assert "pwned" not in shown and "title" not in shown  # the contents of window-title sequences go with them
    assert "\ufffd" in shown  # a format character shows that something was there
    shown.encode("utf-8")  # no lone surrogate left to break the terminal's encoder


def test_terminal_text_keeps_ordinary_text_and_lines_only_when_asked():
    text = "naïve 中文 😀 — ok\ttab"
    assert fmt.terminal_text(text, multiline=True) == text
    assert fmt.terminal_text("a\r\nb\rc\u2028d\ne\tf") == "a b c d e f"
    assert fmt.terminal_text("a\r\nb\rc\u2028d\ne\tf", multiline=True) == "a\nb\nc\nd\ne\tf"
    assert fmt.terminal_text(None) == "" and fmt.terminal_text(3) == "3"


def test_terminal_text_cuts_unfinished_sequences_and_stays_fast():
    assert fmt.terminal_text("x\x1b") == "x\ufffd" and fmt.terminal_text("\x1b]0;title never ends") == ""
    assert fmt.terminal_text("\x1b[12") == "12"
    started = time.perf_counter()
    fmt.terminal_text("\x1b]" + "a" * 1_000_000)
    fmt.terminal_text("\x1b[" * 300_000 + "\u202e" * 300_000, multiline=True)
    assert time.perf_counter() - started < 2
