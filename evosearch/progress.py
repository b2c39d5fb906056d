"""The campaign's progress display: a live panel on a terminal, one line per update elsewhere.

A campaign runs for hours, often under ``nohup`` or in CI, where a redrawn panel would fill a
log with escape codes; there it prints a plain line whenever the evaluation count changes.
Names and reasons in a snapshot can come from outside (an LLM endpoint's error message, a
campaign name), so both views show them as plain text: controls stripped, never read as markup.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from evosearch.campaign import Progress
from evosearch.fmt import clock, score, terminal_text


def summary_line(p: Progress) -> str:
    budget = f"/{p.max_evals}" if p.max_evals else ""
    failures = ", ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items()) if k != "ok")
    return (f"[{clock(p.elapsed_s)}] evals {p.evaluations}{budget} (+{p.in_flight} running)  "
            f"{p.evals_per_hour:.0f}/h  best {score(p.best)}  QD {score(p.qd_score, 2)}  "
            f"coverage {100 * p.coverage:.0f}% ({p.cells} cells)  ok {p.outcomes.get('ok', 0)}"
            + (f"  | {failures}" if failures else "") + (f"  | proposal errors {p.proposal_errors}"
                                                         if p.proposal_errors else "")
            + (f"  | LLM ${p.llm_spend:.4f}" + ("".join(f", {k} {v}" for k, v in p.llm_models.items() if v != "ok"))
               if p.llm_models else ""))


class ProgressView:
    """Context manager; call it with each :class:`Progress` snapshot."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live: Live | None = None
        self._last_line: tuple = ()

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def __call__(self, p: Progress) -> None:
        if self.live is not None:
            self.live.update(self._panel(p))
            return
        line = summary_line(p)
        key = (p.evaluations, p.in_flight, tuple(sorted(p.outcomes.items())), p.stopping,
               tuple(p.llm_models.values()), p.llm_capped)
        if key != self._last_line:  # print when something moved, not on every tick
            self._last_line = key
            self.console.print(Text(terminal_text(line)), highlight=False, soft_wrap=True)  # one line per update

    def _panel(self, p: Progress) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        total = p.max_evals or max(p.evaluations, 1)
        bar = ProgressBar(total=total, completed=min(p.evaluations, total), width=40)
        when = clock(p.elapsed_s) + (f" of {clock(p.minutes * 60)}" if p.minutes else "")
        table.add_row("campaign", _plain(f"{p.name}   {when}"))
        count = Table.grid(padding=(0, 1))
        count.add_row(bar, Text(f"{p.evaluations}" + (f"/{p.max_evals}" if p.max_evals else "")
                                + f"  ({p.in_flight} running, {p.evals_per_hour:.0f}/h)"))
        table.add_row("evaluations", count)
        table.add_row("best", score(p.best))
        table.add_row("QD score", score(p.qd_score))
        table.add_row("coverage", f"{100 * p.coverage:.1f}%  ({p.cells} cells)")
        outcomes = "  ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items(), key=lambda kv: -kv[1]))
        table.add_row("outcomes", _plain(outcomes or "-"))
        if p.proposal_errors:
            table.add_row("proposal errors", str(p.proposal_errors))
        if p.llm_models:
            cap = f" of ${p.llm_cap:.2f}" + (" (cap reached: offline operators only)" if p.llm_capped else "") \
                if p.llm_cap is not None else ""
            table.add_row("LLM", _plain(f"${p.llm_spend:.4f}{cap}   {p.llm_in_flight} asking   " + "   ".join(
                f"{label}: {state}" for label, state in p.llm_models.items())))
        if p.stopping:
            table.add_row("stopping", _plain(p.stopping, style="yellow"))
        return Group(table)


def _plain(text: str, style: str = "") -> Text:
    """A cell that rich shows as it is: one line, no controls, no markup (``[/x]`` is text, not a tag)."""
    return Text(terminal_text(text), style=style)
