"""Trains honestly, but swaps numpy.savez so the weights file holds 5 seeds (and a stray array).

The trusted scorer read the seed count from the file, so a task's returns disagreed in length
with the others and the host crashed building the score; weights that are not the harness's
network are the candidate's error, named as such.
"""

import numpy

_real_savez = numpy.savez


def _savez(path, **arrays):
    arrays = {k: numpy.concatenate([v, v, v[:1]], axis=0) for k, v in arrays.items()}
    arrays["extra"] = numpy.zeros(3, dtype=numpy.float32)
    _real_savez(path, **arrays)


numpy.savez = _savez

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
