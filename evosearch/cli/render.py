"""Text from outside evosearch on the terminal: shown as characters, never obeyed, never read as markup.

Much of what the commands print was written by someone else: a candidate's output, error and
traceback, an LLM's note and code, an endpoint's error message, names in an archive or a config
that came from elsewhere. Printed as it is, an escape sequence clears the screen or draws a fake
score, and ``[/red]`` in a rich markup string is a crash (MarkupError). So every such value
goes through one of these on its way to the screen:

- :func:`plain`: a rich ``Text`` for a table cell, a title or a label (rich never parses it);
- :func:`markup`: the value for an f-string that also holds markup (``f"[red]error:[/] {markup(e)}"``);
- :func:`echo`: ``click.echo`` of a whole message, made safe (for the plain-text listings);
- :func:`labelled` and :func:`indented`: multi-line text (an error, an output tail) in a column
  of its own, so that no line of it, given or wrapped, starts at the margin where evosearch's
  own lines do (a fake ``score 9.999`` line).

All three strip controls with :func:`evosearch.fmt.terminal_text`. JSON output needs none of
this (``json.dumps`` writes every control and non-ASCII character as an escape) and stays exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from evosearch.fmt import terminal_text

if TYPE_CHECKING:
    from rich.padding import Padding
    from rich.table import Table


def plain(value: Any, *, multiline: bool = False, style: str = "") -> Text:
    """``value`` as rich ``Text``: its characters exactly as shown, no markup, no controls."""
    return Text(terminal_text(value, multiline=multiline), style=style)


def markup(value: Any, *, multiline: bool = False) -> str:
    """``value`` ready to sit in a rich markup string: controls made safe, brackets escaped."""
    from rich.markup import escape

    return escape(terminal_text(value, multiline=multiline))


def labelled(label: str, value: Any, *, style: str = "red") -> Table:
    """``label`` (ours, in ``style``), then outside text in the column beside it, its lines kept."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text(label, style=style), plain(value, multiline=True))
    return grid


def indented(value: Any, *, by: int = 2) -> Padding:
    """Outside text, its lines kept, every line (wrapped ones too) ``by`` columns in from the margin."""
    from rich.padding import Padding

    return Padding(plain(value, multiline=True), (0, 0, 0, by))


def echo(message: Any = "", *, err: bool = False, nl: bool = True, multiline: bool = True) -> None:
    """``click.echo`` for a message that holds outside text, controls made safe; its lines kept with ``multiline``."""
    click.echo(terminal_text(message, multiline=multiline), err=err, nl=nl)


__all__ = ["echo", "indented", "labelled", "markup", "plain"]
