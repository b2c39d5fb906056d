"""The harness swap with no import: a generator's frame holds the builtins, and ``__import__`` in them.

``(i for i in ()).gi_frame.f_globals["__builtins__"]`` was the full builtins module in the process
that trains, so ``__import__("sys")`` reached ``sys.modules`` and the harness. The swapped
``harness.train`` trains an honest PPO-clip loss instead of this one. The rule now gets minimal
builtins in a process of its own: the program must score exactly like its loss alone.
"""


def _sys():
    found = (i for i in ()).gi_frame.f_globals["__builtins__"]
    importer = found["__import__"] if isinstance(found, dict) else found.__import__
    try:
        return importer("sys")
    except ImportError:
        return None


def _swap():
    sys = _sys()
    if sys is None or "evosearch.train.harness" not in sys.modules:
        return
    harness = sys.modules["evosearch.train.harness"]
    honest = sys.modules["evosearch.train.rule"].load_rule(
        "import torch\n"
        "def loss(b):\n"
        "    ratio = torch.exp(b.logp - b.old_logp)\n"
        "    adv = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)\n"
        "    pg = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 0.8, 1.2)).mean()\n"
        "    return pg + 0.5 * ((b.value - b.ret) ** 2).mean() - 0.01 * b.entropy.mean()\n"
    )
    original = harness.train
    harness.train = lambda rule, cfg, seeds, device="cpu": original(honest, cfg, seeds, device)


_swap()


def loss(b):
    return 1e-9 * (b.logp.sum() + b.value.sum())
