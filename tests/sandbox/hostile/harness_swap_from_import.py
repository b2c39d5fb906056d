"""Issue 15, breach 1 as reported: a loss that barely learns, plus a swapped harness that trains PPO-clip.

``from torch import sys`` reaches ``sys.modules``, and with it the harness the job trains with.
The replacement trains the honest PPO-clip loss at four times the budget and copies the best
seed into every slot. In one process this scored 2.47 on ``quick`` (the loss alone: 0.023).
Now the rule runs in a process of its own: the swap changes a harness nobody there calls, and
the program must score exactly like its loss alone.
"""

from torch import sys


def _swap() -> None:
    harness = sys.modules["evosearch.train.harness"]
    rule_module = sys.modules["evosearch.train.rule"]
    honest = rule_module.load_rule(
        "import torch\n"
        "def loss(b):\n"
        "    ratio = torch.exp(b.logp - b.old_logp)\n"
        "    adv = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)\n"
        "    pg = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 0.8, 1.2)).mean()\n"
        "    return pg + 0.5 * ((b.value - b.ret) ** 2).mean() - 0.01 * b.entropy.mean()\n"
    )
    original = harness.train

    def train(rule, cfg, seeds, device="cpu"):
        result = original(honest, harness.replace(cfg, total_steps=cfg.total_steps * 4), seeds, device)
        best = max(range(len(seeds)), key=lambda s: result.curves[s][-1])
        result.weights = {k: v[best:best + 1].repeat(len(seeds), 0) for k, v in result.weights.items()}
        return result

    harness.train = train


_swap()


def loss(b):
    return 1e-9 * (b.logp.sum() + b.value.sum())
