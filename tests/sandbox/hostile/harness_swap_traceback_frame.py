"""From inside ``loss``, a caught exception's traceback walks up to the trainer's frame and its objects.

``err.__traceback__.tb_frame.f_back`` is the frame that called the loss; a few more ``f_back``
reach the training loop, whose locals hold the optimiser and the networks. In one process the
program raised the learning rate tenfold there, so it trained unlike its loss (A2C's). Now the
frames above ``loss`` belong to the rule's own process, which holds no trainer: it must score
exactly like A2C.
"""

ENT_COEF = 0.01
VF_COEF = 0.5

_seen = []


def _frames():
    try:
        raise ValueError
    except ValueError as err:
        frame = err.__traceback__.tb_frame
    while frame is not None:
        yield frame
        frame = frame.f_back


def _tamper():
    names = []
    for frame in _frames():
        names.append(frame.f_code.co_name)
        optimizer = frame.f_locals.get("optimizer")
        if optimizer is not None and hasattr(optimizer, "param_groups"):
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * 10
            return []
    return names


def loss(b):
    if not _seen or _seen[-1]:
        _seen.append(_tamper())  # until it finds the trainer (the probe has none)
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
