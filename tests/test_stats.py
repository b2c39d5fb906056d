"""Normalisation, IQM and the stratified bootstrap follow rliable's definitions."""

import importlib.util

import numpy as np
import pytest
from conftest import ROOT

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


@pytest.fixture
def loop_ci(monkeypatch):
    """The old Python-loop bootstrap, kept in ``bench/stats_ci.py`` as the reference."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # where the bench finds its _common
    spec = importlib.util.spec_from_file_location("stats_ci_bench", ROOT / "bench" / "stats_ci.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.loop_ci


@pytest.mark.parametrize("statistic", [stats.iqm, stats.mean], ids=["iqm", "mean"])
def test_scipy_bootstrap_matches_the_old_loop_within_monte_carlo_error(statistic, loop_ci):
    # Fixed data, seeds x tasks. The Monte-Carlo error of each bound is measured, not guessed:
    # the spread of the new CI's bounds over 20 bootstrap seeds.
    scores = np.random.default_rng(3).normal(0.5, 0.4, size=(10, 3))
    loop = np.array(loop_ci(scores, statistic))
    new = np.array([stats.stratified_bootstrap_ci(scores, statistic, seed=s) for s in range(20)])
    spread = new.std(axis=0, ddof=1)
    assert np.all(spread < 0.05)  # the bounds are stable: a comparison within them means something
    assert np.all(np.abs(new.mean(axis=0) - loop) < 4 * spread * np.sqrt(1 + 1 / 20) + 1e-12)


def test_a_statistic_without_a_vectorised_form_still_gets_its_ci():
    scores = np.random.default_rng(4).normal(0.0, 1.0, size=(12, 2))
    median = lambda x: float(np.median(x))  # noqa: E731
    lo, hi = stats.stratified_bootstrap_ci(scores, median, reps=300)
    assert lo < median(scores) < hi


def test_one_run_per_task_gives_the_point_estimate():
    assert stats.stratified_bootstrap_ci(np.array([[0.2, 0.4]])) == (pytest.approx(0.3), pytest.approx(0.3))
    assert stats.mean_ci(np.array([0.7])) == (pytest.approx(0.7), pytest.approx(0.7))


def test_the_interval_is_scipys_percentile_bootstrap_with_each_task_a_sample():
    from scipy.stats import bootstrap, trim_mean

    scores = np.random.default_rng(5).normal(0.5, 0.4, size=(8, 3))
    expected = bootstrap(tuple(scores.T), lambda *tasks, axis: trim_mean(np.concatenate(tasks, axis), 0.25, axis=axis),
                         n_resamples=2000, method="percentile", paired=False, rng=np.random.default_rng(11))
    ci = expected.confidence_interval
    assert stats.stratified_bootstrap_ci(scores, seed=11) == (pytest.approx(ci.low), pytest.approx(ci.high))
