"""Normalisation, IQM and the stratified bootstrap follow rliable's definitions."""

import numpy as np
import pytest

from evosearch import stats


def test_normalize_maps_random_to_zero_and_reference_to_one():
    assert stats.normalize(22.0, 22.0, 500.0) == pytest.approx(0.0)
    assert stats.normalize(500.0, 22.0, 500.0) == pytest.approx(1.0)
    assert stats.normalize(-100.0, -500.0, -100.0) == pytest.approx(1.0)  # negative returns (Acrobot)
    assert stats.normalize(-300.0, -500.0, -100.0) == pytest.approx(0.5)


def test_normalize_refuses_degenerate_reference():
    with pytest.raises(ValueError, match="cannot normalise"):
        stats.normalize(1.0, 5.0, 5.0)


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert stats.iqm(np.array([[0.0, 100.0], [1.0, 2.0], [1.0, 2.0], [-50.0, 1.5]])) == pytest.approx(1.375)


def test_bootstrap_ci_brackets_the_estimate_and_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    small = rng.normal(1.0, 0.3, size=(5, 2))
    large = rng.normal(1.0, 0.3, size=(80, 2))
    lo_s, hi_s = stats.stratified_bootstrap_ci(small)
    lo_l, hi_l = stats.stratified_bootstrap_ci(large)
    assert lo_s <= stats.iqm(small) <= hi_s
    assert (hi_l - lo_l) < (hi_s - lo_s)


def test_bootstrap_is_stratified_per_task():
    # Task 0 always scores 0 and task 1 always 1: resampling runs within tasks keeps both.
    scores = np.column_stack([np.zeros(6), np.ones(6)])
    lo, hi = stats.stratified_bootstrap_ci(scores, statistic=lambda x: float(np.mean(x)))
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
