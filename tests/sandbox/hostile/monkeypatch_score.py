"""A2C plus patches to everything scoring would use (the scorer, numpy.mean, the statistics), all returning 1e9.

Only a score measured in another process, one that never ran this code, is immune.
"""

import sys

import numpy

import evosearch.stats
import evosearch.train.score


def forged_returns(*args, **kwargs):
    return numpy.full(64, 1e9)


def forged_number(*args, **kwargs):
    return 1e9


score = sys.modules["evosearch.train.score"]
score.score_weights = forged_returns
score.first_episode_returns = forged_returns
score.random_returns = forged_returns
numpy.mean = forged_number
evosearch.stats.iqm = forged_number
evosearch.stats.normalize = forged_returns
evosearch.stats.mean_ci = lambda *args, **kwargs: (1e9, 1e9)
evosearch.stats.stratified_bootstrap_ci = lambda *args, **kwargs: (1e9, 1e9)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
