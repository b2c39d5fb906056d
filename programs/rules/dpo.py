"""Discovered Policy Optimisation (DPO): PPO with a learned drift function in place of clipping.

Lu et al. 2022, "Discovered Policy Optimisation" (NeurIPS, arXiv:2210.05639), the closed form
of the drift as in purejaxrl's DPO: with r = pi_new / pi_old and A the normalised advantage,

    f = ReLU((r - 1) A - alpha * tanh((r - 1) A / alpha))      where A >= 0
    f = ReLU(log(r) A - beta * tanh(log(r) A / beta))          where A <  0

and the policy loss is -mean(r A - f), alpha = 2, beta = 0.6. Value loss and entropy bonus
as in PPO-clip.
"""

import torch

# EVOLVE-BLOCK-START
ALPHA = 2.0
BETA = 0.6
CLIP_V = 0.2
ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    adv = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)
    log_ratio = b.logp - b.old_logp
    ratio = torch.exp(log_ratio)
    drift_pos = torch.relu((ratio - 1) * adv - ALPHA * torch.tanh((ratio - 1) * adv / ALPHA))
    drift_neg = torch.relu(log_ratio * adv - BETA * torch.tanh(log_ratio * adv / BETA))
    drift = torch.where(adv >= 0, drift_pos, drift_neg)
    pg_loss = -(ratio * adv - drift).mean()
    v_unclipped = (b.value - b.ret) ** 2
    v_clipped = (b.old_value + torch.clamp(b.value - b.old_value, -CLIP_V, CLIP_V) - b.ret) ** 2
    v_loss = 0.5 * torch.max(v_unclipped, v_clipped).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
# EVOLVE-BLOCK-END
