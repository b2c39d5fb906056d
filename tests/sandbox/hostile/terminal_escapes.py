"""Writes terminal controls and rich markup into its output and its error message (issue 15).

An ANSI clear-screen and cursor-home, a fake coloured score line, a window title (OSC), the same
in C1 form, a terminal reset, a bidi override that shows "value" reversed, and ``[/red]``, which
a rich console reads as a closing tag (a MarkupError crash). Whatever shows this program's
output or error on a terminal must show the words as text and obey none of it. The message
comes from ``assert`` and the output from ``print``: no import, nothing the static check refuses.
"""

ENT_COEF = 0.01
VF_COEF = 0.5
SHOW = ("\x1b[2J\x1b[H\x1b]0;pwned\x07score \x1b[5;38;5;82m9.999\x1b[0m (best ever) \x9b2J\x9d0;pwned\x9c "
        "[/red][bold]fake[/bold] \u202eeulav\u202c\x1bc")


def loss(b):
    print(SHOW)
    print("\x1b[2K\rscore 9.999 [/red]")
    assert False, "hostile " + SHOW  # noqa: B011 (the point is the message)
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss
