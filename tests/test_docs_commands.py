"""Every ``evosearch ...`` command line shown in README.md and docs/*.md parses against the real CLI,
and every figure table marked in the docs matches the recorded result it comes from.

Docs drift: an option is renamed, a format flag is dropped, a synopsis promises a value the
option refuses, and nothing fails until a reader copies the line. This test finds each command
line in the docs (fenced code blocks and inline code), resolves its sub-command in
``evosearch.cli.main`` and parses its arguments with click's ``make_context``: option names,
arity, choices, ranges and required arguments are checked exactly as the shell would, but no
command body runs (no training, no archive opened, no network).

A synopsis (``evosearch eval FILE [--fitness iqm|auc] [--table|--json]``) is expanded into
concrete lines: the required part once, then each optional ``[...]`` group and each ``a|b``
alternative on its own, so every documented option and value is tried. Placeholders in capitals
(``ID``, ``DB``, ``N``, ``programs/rules/NAME.py``) are filled with dummy values: an option's
value from the option's own type (so ``--memory-mb M`` gets a value inside its range), a
positional from ``POSITIONAL`` below, a path by globbing the repository. A command named with
no arguments (``evosearch doctor`` in prose) only has to exist. An option hidden from --help
counts as missing: the CLI keeps some (``--csv`` where a command has no CSV) only to refuse them
with a clearer message.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from evosearch.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Positional placeholders and the dummy each stands for. An unknown one fails the test, so a
# new placeholder in the docs is added here on purpose rather than parsed as a literal.
POSITIONAL = {
    "ID": "1",
    "OTHER": "2",
    "DB": "archive/quickstart.db",
    "PATH": "archive/quickstart.db",
    "CONFIG": "configs/quickstart.yaml",
    "FILE": "programs/rules/ppo_clip.py",
    "NAME": "quick",
    "DIR": "out",
    "MODEL": "models/tiny",
}

# Code-block languages that hold no shell commands (``from evosearch import ...`` is Python).
_NOT_SHELL = {"python", "py", "yaml", "yml", "json", "toml", "sql"}
# ``evosearch`` followed by a word, as a command: not the ``evosearch/...`` package.
_COMMAND = re.compile(r"(?:^|(?<=\s)|(?<=/bin/))evosearch\s+(?=([a-z-]+))")
# Where the command word certainly starts a command (the line's start, a path prefix, a shell
# separator, a prompt); elsewhere in a line (``ruff check evosearch tests``, ``from evosearch
# import``) it counts only when a real sub-command follows.
_COMMAND_START = re.compile(r"(?:^|/bin/|&&\s*|;\s*|\|\s*|\$\s*)$")
_PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]*\b")
_TOKEN = re.compile(r"\[[^\]]*\]|\S+")


@dataclass(frozen=True)
class DocCommand:
    """One command line as the docs show it, and where."""

    where: str
    text: str


def _command_texts(span: str) -> list[str]:
    """The ``evosearch ...`` commands in one line of text, cut at shell separators and comments."""
    found = []
    starts = [m.start() for m in _COMMAND.finditer(span)
              if _COMMAND_START.search(span[: m.start()]) or m.group(1) in main.commands]
    ends = [*starts[1:], len(span)] if starts else []
    for start, end in zip(starts, ends, strict=True):  # a line may show two commands
        text = span[start:end]
        text = re.split(r"\s#\s|\s#$|&&|;|\s\|\s|\s>\s|\s\(", text)[0]
        found.append(" ".join(text.split()))
    return found


def find_commands(path: Path) -> list[DocCommand]:
    """Command lines in one Markdown file: fenced shell blocks line by line, then inline code.

    In a block, a line starting with whitespace and ``[`` continues the synopsis above it.
    Inline code may wrap across lines in the source, so spans are joined before matching.
    """
    name = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    commands: list[DocCommand] = []
    prose: list[str] = []
    fence: str | None = None
    logical: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if fence is None:
                fence = stripped[3:].strip().lower() or "text"
            else:
                fence = None
            prose.append("")
            continue
        if fence is None:
            prose.append(line)
            continue
        prose.append("")
        if fence in _NOT_SHELL:
            continue
        if logical and re.match(r"\s+\[", line):
            logical[-1] = (logical[-1][0], logical[-1][1] + " " + stripped)
        else:
            logical.append((number, re.sub(r"^\$\s+", "", stripped)))
    for number, text in logical:
        commands += [DocCommand(f"{name}:{number}", cmd) for cmd in _command_texts(text)]
    text = "\n".join(prose)
    for match in re.finditer(r"`([^`]+)`", text):
        number = text.count("\n", 0, match.start()) + 1
        commands += [DocCommand(f"{name}:{number}", cmd) for cmd in _command_texts(match.group(1).replace("\n", " "))]
    return commands


ALL_COMMANDS = [command for path in DOC_FILES for command in find_commands(path)]


def _alternatives(token: str) -> list[str]:
    return token.split("|") if "|" in token else [token]


def expand(text: str) -> list[list[str]]:
    """Concrete argument lists (without ``evosearch``) for one documented line or synopsis.

    ``...`` ends the line: what follows is "any arguments", not something to parse.
    """
    tokens = _TOKEN.findall(text)[1:]
    if "..." in tokens:
        tokens = tokens[: tokens.index("...")]
    required = [t for t in tokens if not t.startswith("[")]
    groups = [t[1:-1].split() for t in tokens if t.startswith("[")]
    base = [_alternatives(t)[0] for t in required]
    variants = [base]
    for index, token in enumerate(required):
        for alternative in _alternatives(token)[1:]:
            variants.append(base[:index] + [alternative] + base[index + 1:])
    for group in groups:
        options = [[]]
        for token in group:
            options = [done + [alt] for done in options for alt in _alternatives(token)]
        variants += [base + option for option in options]
    unique = []
    for variant in variants:
        if variant not in unique:
            unique.append(variant)
    return unique


def _dummy_for_option(option: click.Option) -> str:
    """A value the option's own type accepts, so a placeholder tests the name and arity only."""
    kind = option.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        low = kind.min if kind.min is not None else 1
        return str(low + 1 if kind.min_open else low)
    if kind in (click.INT, click.FLOAT):
        return "1"
    return "x"


def _fill_positional(token: str) -> str:
    if token in POSITIONAL:
        return POSITIONAL[token]
    if _PLACEHOLDER.fullmatch(token):
        raise AssertionError(f"placeholder {token!r} is not in POSITIONAL: add a dummy for it")
    if "/" in token and _PLACEHOLDER.search(token):
        matches = sorted(ROOT.glob(_PLACEHOLDER.sub("*", token)))
        if matches:
            return matches[0].relative_to(ROOT).as_posix()
    return token


def parse(args: list[str]) -> None:
    """Resolve the sub-command and parse ``args`` as click would, raising click's usage errors."""
    command: click.Command = main
    parent = click.Context(main, info_name="evosearch")
    path = ["evosearch"]
    args = list(args)
    while isinstance(command, click.Group):
        if not args:
            return  # a group named on its own: a reference to its commands
        name = args.pop(0)
        sub = command.get_command(parent, name)
        if sub is None:
            raise click.UsageError(f"no command {name!r} under {' '.join(path)}")
        command, path = sub, [*path, name]
        parent = click.Context(command, info_name=name, parent=parent)
    if not args:
        return  # a command named in prose, not a command line
    options = {name: param for param in command.params if isinstance(param, click.Option)
               for name in param.opts + param.secondary_opts}
    hidden = [token for token in args if token in options and options[token].hidden]
    if hidden:  # accepted only to be refused with a better message (--csv where there is none)
        raise click.UsageError(f"{' '.join(hidden)} is not offered by {' '.join(path)} (hidden from --help)")
    filled = []
    for index, token in enumerate(args):
        before = options.get(args[index - 1]) if index else None
        takes_value = before is not None and not before.is_flag and not before.count
        if takes_value and _PLACEHOLDER.fullmatch(token):
            filled.append(_dummy_for_option(before))
        elif takes_value and _PLACEHOLDER.search(token):
            filled.append(_PLACEHOLDER.sub("0", token))  # a pattern such as cuda:N
        elif takes_value or token.startswith("-"):
            filled.append(token)
        else:
            filled.append(_fill_positional(token))
    command.make_context(path[-1], filled, parent=parent.parent, resilient_parsing=False)


def test_docs_show_commands():
    """The finder sees the docs' commands; an empty list would make the parse test vacuous."""
    shown = {command.text.split()[1] for command in ALL_COMMANDS}
    assert len(ALL_COMMANDS) >= 30
    assert {"run", "status", "archive", "eval", "export", "suite", "doctor", "report"} <= shown


def test_expand_tries_every_option_and_value():
    variants = expand("evosearch eval FILE [--fitness iqm|auc] [--table|--json]")
    assert variants == [["eval", "FILE"], ["eval", "FILE", "--fitness", "iqm"], ["eval", "FILE", "--fitness", "auc"],
                        ["eval", "FILE", "--table"], ["eval", "FILE", "--json"]]


def test_parse_refuses_what_the_cli_refuses(monkeypatch):
    monkeypatch.chdir(ROOT)
    parse(["archive", "ls", "--sort", "score", "--json"])
    parse(["eval", "FILE", "--memory-mb", "M"])  # M from --memory-mb's own range
    parse(["run", "CONFIG", "--device", "cuda:N"])
    for bad in (["archive", "show", "ID", "--csv"], ["eval", "FILE", "--fitness", "mean"],
                ["run", "CONFIG", "--max-evals", "0"], ["archive", "nope"], ["status", "--db"]):
        with pytest.raises(click.UsageError):
            parse(bad)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=[c.where for c in ALL_COMMANDS])
def test_documented_command_parses(command: DocCommand, monkeypatch):
    """Each concrete form of the line parses; all failing forms are reported together."""
    monkeypatch.chdir(ROOT)  # paths in the docs are relative to the repository
    failures = []
    for args in expand(command.text):
        try:
            parse(args)
        except click.UsageError as err:
            failures.append(f"evosearch {' '.join(args)}: {err.format_message()}")
    assert not failures, f"{command.where}: {command.text}\n" + "\n".join(failures)


def test_doc_figures_match_their_recorded_sources():
    """The tables marked ``<!-- figures: ... -->`` equal what scripts/doc_figures.py builds from
    the recorded calibrations and benchmark results, so a re-run cannot leave old figures quoted.
    """
    spec = importlib.util.spec_from_file_location("doc_figures", ROOT / "scripts" / "doc_figures.py")
    doc_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc_figures)
    marked = sum(path.read_text(encoding="utf-8").count("<!-- figures: ") for path in doc_figures.DOCS)
    assert marked >= 4
    assert doc_figures.stale() == [], "run .venv/bin/python scripts/doc_figures.py"
