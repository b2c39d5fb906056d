"""A bandit over operators: use more of whatever makes children that enter the archive.

Rewards lie in [0, 1]: half for a child that takes a cell (fills an empty one or beats its
elite), half for the score it gained over its parent; failures and duplicates get 0. Thompson
sampling over Beta posteriors is the default; UCB1 is there for those who prefer a
deterministic rule. The state is a plain dict
so the campaign can store it in the database and resume with what it had learned.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Bandit:
    arms: tuple[str, ...]
    algorithm: str = "thompson"  # or "ucb1"
    successes: dict[str, float] = field(default_factory=dict)
    trials: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)  # a prior preference: scales an arm's draw (default 1)

    def choose(self, rng: random.Random, allowed: list[str] | None = None) -> str:
        """The arm to pull next among ``allowed`` (default: all)."""
        candidates = [a for a in self.arms if allowed is None or a in allowed]
        if not candidates:
            raise ValueError("no operator applies")
        if self.algorithm == "ucb1":
            untried = [a for a in candidates if self.trials.get(a, 0) == 0]
            if untried:
                return untried[rng.randrange(len(untried))]
            total = sum(self.trials.get(a, 0) for a in candidates)
            return max(candidates, key=lambda a: self.weights.get(a, 1.0) * (
                self.successes.get(a, 0) / self.trials[a] + math.sqrt(2 * math.log(total) / self.trials[a])))
        draws = {a: self.weights.get(a, 1.0) * rng.betavariate(1 + self.successes.get(a, 0),
                                                                1 + self.trials.get(a, 0) - self.successes.get(a, 0))
                 for a in candidates}
        return max(candidates, key=lambda a: draws[a])

    def update(self, arm: str, reward: float) -> None:
        self.trials[arm] = self.trials.get(arm, 0) + 1
        self.successes[arm] = self.successes.get(arm, 0) + reward

    def rate(self, arm: str) -> float | None:
        trials = self.trials.get(arm, 0)
        return self.successes.get(arm, 0) / trials if trials else None

    def to_state(self) -> dict:
        return {"successes": dict(self.successes), "trials": dict(self.trials)}

    @classmethod
    def from_state(cls, arms: tuple[str, ...], algorithm: str, state: dict | None) -> Bandit:
        state = state or {}
        return cls(arms=arms, algorithm=algorithm, successes=dict(state.get("successes", {})),
                   trials=dict(state.get("trials", {})))
