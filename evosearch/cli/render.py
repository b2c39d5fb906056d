"""Text from outside evosearch on the terminal: shown as characters, never obeyed, never read as markup.

Much of what the commands print was written by someone else: a candidate's output, error and
traceback, an LLM's note and code, an endpoint's error message, names in an archive or a config
that came from elsewhere. Printed as it is, an escape sequence clears the screen or draws a fake
score, and ``[/red]`` in a rich markup string is a crash (MarkupError). So every such value
goes through one of these on its way to the screen:

- :func:`plain`: a rich ``Text`` for a table cell, a title or a label (rich never parses it);
- :func:`markup`: the value for an f-string that also holds markup (``f"[red]error:[/] {markup(e)}"``);
- :func:`echo`: ``click.echo`` of a whole message, made safe (for the plain-text listings).

All three strip controls with :func:`evosearch.fmt.terminal_text`. JSON output needs none of
this (``json.dumps`` writes every control and non-ASCII character as an escape) and stays exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from evosearch.fmt import terminal_text

if TYPE_CHECKING:
    from rich.text import Text


def plain(value: Any, *, multiline: bool = False, style: str = "") -> Text:
    """``value`` as rich ``Text``: its characters exactly as shown, no markup, no controls."""
    from rich.text import Text

    return Text(terminal_text(value, multiline=multiline), style=style)


def markup(value: Any, *, multiline: bool = False) -> str:
    """``value`` ready to sit in a rich markup string: controls made safe, brackets escaped."""
    from rich.markup import escape

    return escape(terminal_text(value, multiline=multiline))


def echo(message: Any = "", *, err: bool = False, nl: bool = True, multiline: bool = True) -> None:
    """``click.echo`` for a message that holds outside text, controls made safe; its lines kept with ``multiline``."""
    click.echo(terminal_text(message, multiline=multiline), err=err, nl=nl)


__all__ = ["echo", "markup", "plain"]
