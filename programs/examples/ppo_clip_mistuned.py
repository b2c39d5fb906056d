"""PPO-clip with three constants set badly: what `evosearch metatune` should repair.

programs/rules/ppo_clip.py with the entropy coefficient at 0.1 (CleanRL's is 0.01), the value
coefficient at 2.0 (CleanRL's 0.5) and the policy term scaled by 0.3 (PG_COEF; 1.0 in PPO).
With the entropy bonus a third of the policy term, the policy stays close to uniform; with the
value term four times larger, the gradient-norm clip (shared by actor and critic) shortens the
policy's steps. docs/metatune.md tunes it back and scores the result on classic-quick.
"""

import torch

# EVOLVE-BLOCK-START
CLIP = 0.2
ENT_COEF = 0.1
VF_COEF = 2.0
PG_COEF = 0.3


def loss(b):
    adv = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)
    ratio = torch.exp(b.logp - b.old_logp)
    pg_loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)).mean()
    v_unclipped = (b.value - b.ret) ** 2
    v_clipped = (b.old_value + torch.clamp(b.value - b.old_value, -CLIP, CLIP) - b.ret) ** 2
    v_loss = 0.5 * torch.max(v_unclipped, v_clipped).mean()
    return PG_COEF * pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
# EVOLVE-BLOCK-END
