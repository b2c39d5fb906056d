"""``evosearch.fmt``: one way to show a score, a CI, a duration; one definition of a finite number."""

from __future__ import annotations

import math

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
