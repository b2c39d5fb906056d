"""The operator bandit learns which operators put children into the archive."""

import random
from collections import Counter

import pytest

from evosearch.propose.bandit import Bandit


@pytest.mark.parametrize("algorithm", ["thompson", "ucb1"])
def test_the_bandit_learns_the_better_operator(algorithm):
    rng, bandit = random.Random(0), Bandit(("good", "bad"), algorithm)
    rates = {"good": 0.4, "bad": 0.05}
    pulls = Counter()
    for _ in range(600):
        arm = bandit.choose(rng)
        pulls[arm] += 1
        bandit.update(arm, 1.0 if rng.random() < rates[arm] else 0.0)
    assert pulls["good"] > 3 * pulls["bad"]
    assert bandit.rate("good") == pytest.approx(0.4, abs=0.08)


def test_the_state_survives_a_round_trip_and_respects_allowed_arms():
    bandit = Bandit(("a", "b", "c"))
    bandit.update("a", 1.0)
    bandit.update("b", 0.0)
    again = Bandit.from_state(("a", "b", "c"), "thompson", bandit.to_state())
    assert again.to_state() == bandit.to_state()
    assert {again.choose(random.Random(i), ["b", "c"]) for i in range(50)} <= {"b", "c"}
    with pytest.raises(ValueError):
        again.choose(random.Random(0), [])
