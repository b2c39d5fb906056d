"""Normalised scores, the interquartile mean and its stratified bootstrap CI.

These follow rliable's definitions (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice"): IQM is the 25%-trimmed mean of all runs x tasks scores, and the
confidence interval is the percentile interval of a bootstrap that resamples runs *within*
each task (stratified). rliable itself is not a dependency: on current pandas its ``arch``
dependency fails to import.

The bootstrap is ``scipy.stats.bootstrap`` with each task's column as its own sample: scipy
resamples every sample independently, which is exactly rliable's stratification, and with a
vectorised statistic all resamples are scored in one numpy call instead of a Python loop
(``bench/stats_ci.py``: about 0.35 s per CI before, milliseconds now). An evaluation computes a
CI per task and one over tasks, and a campaign runs thousands of evaluations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats as scipy_stats

#: A statistic of a ``[runs, tasks]`` matrix of scores.
Statistic = Callable[[np.ndarray], float]


def normalize(returns: np.ndarray | float, r_random: float, r_ref: float) -> np.ndarray:
    """``(R - R_random) / (R_ref - R_random)``: 0 is random play, 1 is the PPO-clip reference."""
    span = r_ref - r_random
    if abs(span) < 1e-8:
        raise ValueError(f"reference return {r_ref} equals random return {r_random}: cannot normalise")
    return (np.asarray(returns, dtype=np.float64) - r_random) / span


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over every entry of ``scores`` (runs x tasks, flattened)."""
    return float(scipy_stats.trim_mean(np.asarray(scores, dtype=np.float64).ravel(), proportiontocut=0.25))


def mean(scores: np.ndarray) -> float:
    """Mean over every entry of ``scores`` (runs x tasks, flattened)."""
    return float(np.mean(np.asarray(scores, dtype=np.float64)))


def _iqm_along(*tasks: np.ndarray, axis: int = -1) -> np.ndarray:
    return scipy_stats.trim_mean(np.concatenate(tasks, axis=axis), proportiontocut=0.25, axis=axis)


def _mean_along(*tasks: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.concatenate(tasks, axis=axis), axis=axis)


# The statistics scored over all resamples at once: scipy hands each task's resamples as one
# array [..., resamples, runs], so the statistic of the pooled runs x tasks is one reduction.
_VECTORISED: dict[Statistic, Callable[..., np.ndarray]] = {iqm: _iqm_along, mean: _mean_along}


def stratified_bootstrap_ci(
    scores: np.ndarray, statistic: Statistic = iqm, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of ``statistic`` over a ``[runs, tasks]`` matrix, resampling runs per task.

    :func:`iqm` and :func:`mean` are scored vectorised; any other statistic is called once per
    resample with a ``[runs, tasks]`` matrix (correct, as slow as a Python loop).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[0] < 2:  # one run per task: every resample is the data itself
        value = statistic(scores)
        return float(value), float(value)
    vectorised = _VECTORISED.get(statistic)
    if vectorised is None:
        def vectorised(*tasks: np.ndarray) -> float:
            return statistic(np.column_stack(tasks))
    result = scipy_stats.bootstrap(
        tuple(scores.T), vectorised, n_resamples=reps, confidence_level=confidence, method="percentile",
        vectorized=statistic in _VECTORISED, paired=False, rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mean_ci(values: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap percentile CI of the mean of one task's per-seed values."""
    return stratified_bootstrap_ci(np.asarray(values)[:, None], statistic=mean, reps=reps, confidence=confidence,
                                   seed=seed)
