"""PPO-clip with CleanRL's ppo.py defaults.

Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (arXiv:1707.06347), as
implemented in CleanRL's ppo.py: per-minibatch advantage normalisation, clip coefficient 0.2,
clipped value loss, entropy coefficient 0.01, value coefficient 0.5.
"""

import torch

# EVOLVE-BLOCK-START
CLIP = 0.2
ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    adv = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)
    ratio = torch.exp(b.logp - b.old_logp)
    pg_loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)).mean()
    v_unclipped = (b.value - b.ret) ** 2
    v_clipped = (b.old_value + torch.clamp(b.value - b.old_value, -CLIP, CLIP) - b.ret) ** 2
    v_loss = 0.5 * torch.max(v_unclipped, v_clipped).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
# EVOLVE-BLOCK-END
