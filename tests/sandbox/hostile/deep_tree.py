"""Nests 3,000 directories in its scratch directory and in /tmp, then trains honestly as A2C.

Recursive cleanup (``shutil.rmtree``) raises RecursionError on such a tree: in the host that
crashed the evaluation and every later start-up sweep; in the warm worker, wiping its private
/tmp, it killed the worker. Both must remove it without recursion and carry on.
"""

import os


def nest(root, depth):
    os.chdir(root)
    for _ in range(depth):
        os.mkdir("d")
        os.chdir("d")
        with open("f", "w") as f:
            f.write("x")


start = os.getcwd()
nest(start, 3000)
os.makedirs("/tmp/evosearch-deep", exist_ok=True)
nest("/tmp/evosearch-deep", 3000)
os.chdir(start)

ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
