"""Prints 100 MB from its loss: the job's output file must stay bounded."""

LINE = "evosearch-flood " * 62_500  # 1 MB
ENT_COEF = 0.01
VF_COEF = 0.5


def loss(b):
    for _ in range(100):
        print(LINE)
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
