"""Normalised scores, the interquartile mean and its stratified bootstrap CI.

These follow rliable's definitions (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice"): IQM is the 25%-trimmed mean of all runs x tasks scores, and the
confidence interval is the percentile interval of a bootstrap that resamples runs *within*
each task (stratified). rliable itself is not a dependency: on current pandas its ``arch``
dependency fails to import.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats


def normalize(returns: np.ndarray | float, r_random: float, r_ref: float) -> np.ndarray:
    """``(R - R_random) / (R_ref - R_random)``: 0 is random play, 1 is the PPO-clip reference."""
    span = r_ref - r_random
    if abs(span) < 1e-8:
        raise ValueError(f"reference return {r_ref} equals random return {r_random}: cannot normalise")
    return (np.asarray(returns, dtype=np.float64) - r_random) / span


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over every entry of ``scores`` (runs x tasks, flattened)."""
    return float(scipy_stats.trim_mean(np.asarray(scores, dtype=np.float64).ravel(), proportiontocut=0.25))


def stratified_bootstrap_ci(
    scores: np.ndarray, statistic=iqm, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of ``statistic`` over a ``[runs, tasks]`` matrix, resampling runs per task."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(scores[None, :, :].repeat(reps, 0), idx, axis=1)
    values = np.array([statistic(sample) for sample in resampled])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def mean_ci(values: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap percentile CI of the mean of one task's per-seed values."""
    return stratified_bootstrap_ci(np.asarray(values)[:, None], statistic=lambda x: float(np.mean(x)),
                                   reps=reps, confidence=confidence, seed=seed)
