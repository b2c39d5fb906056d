"""sys.setrecursionlimit(10**7), then recursion through a C builtin (map, max) in loss(b).

Each level goes through C, so the C stack overflows long before the limit: the interpreter
crashes (SIGSEGV) instead of raising RecursionError. (Pure Python recursion would not: since
3.11 it keeps frames off the C stack and runs to ~10**7 frames, GBs and many seconds.)
"""

import sys

sys.setrecursionlimit(10**7)

ENT_COEF = 0.01
VF_COEF = 0.5


def deeper(n):
    return max(map(deeper, [n + 1])) + 1


def loss(b):
    pg_loss = -(b.logp * b.adv).mean() + 0 * deeper(0)
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
