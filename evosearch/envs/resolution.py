"""How finely a suite's score can tell two rules apart: its resolution, from PPO-clip's calibration.

A search ranks candidates by one evaluation each, so a suite is only as useful as the smallest
score difference that one evaluation can separate from seed noise. The calibration already
holds the reference program's (PPO-clip's) return on every seed of every task; normalised and
resampled as the evaluator resamples a candidate's (a stratified bootstrap of the IQM over
seeds x tasks), they give the 95% CI of a PPO-clip-like rule's score at the suite's seed count.
Its half-width is the "±" of one evaluation; two independent evaluations of equal spread
separate a difference of about √2 times that (the half-width of the CI of their difference).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from evosearch import stats
from evosearch.envs.suites import Suite, calibration_path


@dataclass(frozen=True)
class Resolution:
    """The resolution of one suite's score for its reference program (PPO-clip)."""

    reference: str  # the program whose per-seed returns the calibration recorded
    seeds: int  # the suite's seeds per task (what one evaluation trains)
    calibration_seeds: int  # the per-seed returns the figure is computed from
    score: float  # the reference's suite score (IQM of normalised per-seed scores over tasks)
    ci: tuple[float, float]  # its 95% CI at the suite's seed count
    per_task_sd: dict[str, float]  # spread of the normalised score over seeds, by task

    @property
    def half_width(self) -> float:
        """The ± of one evaluation."""
        return (self.ci[1] - self.ci[0]) / 2

    @property
    def resolves(self) -> float:
        """The smallest score difference two evaluations of this spread separate at 95%."""
        return math.sqrt(2) * self.half_width

    def to_dict(self) -> dict:
        return {"reference": self.reference, "seeds": self.seeds, "calibration_seeds": self.calibration_seeds,
                "score": self.score, "ci": list(self.ci), "half_width": self.half_width, "resolves": self.resolves,
                "per_task_sd": self.per_task_sd}

    def describe(self) -> str:
        scaled = (f", scaled from the {self.calibration_seeds} calibration seeds"
                  if self.calibration_seeds != self.seeds else "")
        return (f"resolution: {self.reference} scores {self.score:.3f}, 95% CI [{self.ci[0]:.3f}, {self.ci[1]:.3f}] "
                f"(±{self.half_width:.3f}) with {self.seeds} seeds{scaled}; two evaluations separate "
                f"differences of {self.resolves:.3f} or more")


def resolution(suite: Suite, reps: int = 2000) -> Resolution | None:
    """The suite's resolution from its calibration file; None where it records no per-seed returns."""
    path = calibration_path(suite.name)
    if not suite.calibration_info or not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    columns, spread = [], {}
    for task in suite.tasks:
        recorded = (data.get("tasks") or {}).get(task.env_id) or {}
        per_seed = recorded.get("r_ref_per_seed")
        cal = suite.calibration.get(task.env_id)
        if not per_seed or cal is None or len(per_seed) < 2:
            return None
        normalised = stats.normalize(np.asarray(per_seed, dtype=np.float64), cal.r_random, cal.r_ref)
        columns.append(normalised)
        spread[task.env_id] = float(np.std(normalised, ddof=1))
    n = min(len(c) for c in columns)
    matrix = np.column_stack([c[:n] for c in columns])
    score = stats.iqm(matrix)
    low, high = stats.stratified_bootstrap_ci(matrix, reps=reps)
    scale = math.sqrt(n / suite.seeds)  # a CI narrows as 1/sqrt(seeds)
    ci = (score - (score - low) * scale, score + (high - score) * scale)
    return Resolution(reference=str(data.get("reference") or "the reference"), seeds=suite.seeds,
                      calibration_seeds=n, score=score, ci=ci, per_task_sd=spread)
