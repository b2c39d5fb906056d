"""What every command shares: the output formats, the archive database, the device, exit codes.

- ``@output_options`` adds ``--table`` (the default), ``--json`` and ``--csv``, mutually exclusive,
  and passes ``output`` ("table", "json" or "csv"). It is the only place those flags are declared.
- ``@db_option()`` adds ``--db PATH`` and, unless told otherwise, the optional trailing ``DB``
  argument that older command lines use; it passes ``db`` (a Path, or None for the default lookup).
- ``device_option(...)`` is the ``--device`` of ``eval`` and ``run``: auto, cpu, cuda or cuda:N,
  checked with the pattern the config uses.
- ``emit`` and ``emit_object`` print a result in the chosen format.
- ``Commands`` (the top-level group) and ``user_errors`` turn what a user's files and paths cause
  (not an archive, a newer or locked one, a path that cannot be created or written) into one
  ``Error:`` line and exit 2, for every command alike.
- ``warn_if_weak`` is the line ``eval`` and ``run`` print when the sandbox does not isolate candidates.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import io
import json
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from evosearch.devices import DEVICE_PATTERN
from evosearch.fmt import terminal_text

if TYPE_CHECKING:
    from evosearch.sandbox import Mode

EXIT_BAD_USAGE = 2
FORMATS = ("table", "json", "csv")
_FLAGS = {"table": "--table", "json": "--json", "csv": "--csv"}  # declared here only, by output_options


class BadInput(click.ClickException):
    """A clear one-line error with exit code 2 (bad config, missing database, unknown id)."""

    exit_code = EXIT_BAD_USAGE

    def format_message(self) -> str:
        """The message, safe for the terminal: it often quotes names an archive or a config brought in."""
        return terminal_text(self.message, multiline=True)


# -- output formats ------------------------------------------------------------------------------

_DEFAULT_HELP = {
    "table": "Print a table for people (the default).",
    "json": "Print JSON instead of the table.",
    "csv": "Print CSV (a header, then one row per item) instead of the table.",
}


def output_options(fn: Callable | None = None, *, formats: tuple[str, ...] = FORMATS, json_help: str | None = None,
                   csv_help: str | None = None, table_help: str | None = None):
    """Add ``--table``, ``--json`` and ``--csv`` to a command and pass it ``output``: one of ``formats``.

    Use bare (``@output_options``) for all three, or with arguments: ``formats`` names those that
    apply (always with "table"); a format left out is still accepted on the command line, hidden
    from --help, and refused with a usage error that names the ones there are. ``json_help`` and
    ``csv_help`` say what the output holds ("one array, an object per program"); the flag's help
    reads "Print JSON instead of the table: <that>". Giving two of the flags is a usage error.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or "table" not in formats:
        raise ValueError(f"formats must include 'table' and come from {FORMATS}, got {formats}")
    helps = dict(_DEFAULT_HELP, table=table_help or _DEFAULT_HELP["table"])
    if json_help:
        helps["json"] = f"Print JSON instead of the table: {json_help}"
    if csv_help:
        helps["csv"] = f"Print CSV instead of the table: {csv_help}"

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            chosen = [name for name in FORMATS if kwargs.pop(f"output_{name}")]
            if len(chosen) > 1:
                raise click.UsageError(" and ".join(_FLAGS[name] for name in chosen) + " are mutually exclusive: "
                                       "give one")
            output = chosen[0] if chosen else "table"
            if output not in formats:
                command = click.get_current_context().command_path
                others = " or ".join(_FLAGS[name] for name in formats)
                raise click.UsageError(f"{command} has no {output.upper()} output: use {others}")
            return f(*args, output=output, **kwargs)

        for name in reversed(FORMATS):  # the last decorator applied is listed first: --table, --json, --csv
            wrapper = click.option(_FLAGS[name], f"output_{name}", is_flag=True, hidden=name not in formats,
                                   help=helps[name])(wrapper)
        return wrapper

    return decorate(fn) if fn is not None else decorate


def emit(rows: list[dict], output: str, table: Callable[[list[dict]], None]) -> None:
    """Print ``rows`` as one JSON array, as CSV (lists and dicts as JSON text), or with ``table(rows)``.

    JSON is exact and terminal-safe as it is (every control character is written as an escape).
    CSV has no escapes: written to a file or a pipe it keeps the exact text (click would strip
    colour codes from it; ``color=True`` stops that), shown on a terminal its text is made safe
    like a table's, since then a person reads it.
    """
    if output == "json":
        click.echo(json.dumps(rows, allow_nan=False))
    elif output == "csv":
        text = _csv(rows)
        click.echo(terminal_text(text, multiline=True) if _stdout_is_terminal() else text, nl=False, color=True)
    else:
        table(rows)


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()}
                         for r in rows)
    return buffer.getvalue()


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def emit_object(data: dict, rows: list[dict], output: str, table: Callable[[dict], None]) -> None:
    """Like ``emit`` for a result that is one object: JSON gets ``data``, CSV the listing ``rows``."""
    if output == "json":
        click.echo(json.dumps(data, allow_nan=False))
    else:
        emit(rows, output, lambda _rows: table(data))


# -- the archive database ------------------------------------------------------------------------

DB_HELP = "The archive database (default: the only archive/*.db under the current directory)."


def db_option(fn: Callable | None = None, *, positional: bool = True, help: str = DB_HELP):
    """Add ``--db PATH`` and pass the command ``db``: a Path, or None when none was named.

    With ``positional`` (the default) the command also keeps an optional ``DB`` argument at the
    place of this decorator among its arguments (put it below them), as older command lines
    give it; naming two different databases that way is a usage error. Commands that parse
    their positionals themselves use ``positional=False`` and call ``pick_db``.
    """

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            given = kwargs.pop("db_argument", None) if positional else None
            return f(*args, db=pick_db(given, kwargs.pop("db_path")), **kwargs)

        wrapper = click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                               help=help)(wrapper)
        if positional:
            wrapper = click.argument("db_argument", metavar="[DB]", required=False,
                                     type=click.Path(path_type=Path))(wrapper)
        return wrapper

    return decorate(fn) if fn is not None else decorate


def pick_db(argument: Path | None, option: Path | None) -> Path | None:
    """The one database named by a positional DB and/or ``--db``; both, and different, is a usage error."""
    if argument is None or option is None:
        return option if argument is None else argument
    if argument != option and argument.resolve() != option.resolve():
        raise click.UsageError(f"two databases named: {argument} and --db {option}; give one")
    return option


def find_db(db: Path | None) -> Path:
    """``db`` if it is a file; with none named, the only ``archive/*.db`` here; else a clear BadInput."""
    if db is not None:
        if not db.is_file():
            raise BadInput(f"no archive database at {db}")
        return db
    found = sorted(Path("archive").glob("*.db"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise BadInput("no archive/*.db here: name the database (e.g. --db archive/quickstart.db)")
    raise BadInput(f"several databases in archive/: {', '.join(map(str, found))}; name one with --db")


#: Seconds a browsing command waits for an archive another process holds locked (told on stderr first).
ARCHIVE_WAIT_S = 30.0


def open_archive(db: Path | None):
    """The Archive at ``find_db(db)``, read-only; a file that is not one (or is newer, or locked) is a BadInput.

    Read-only because the commands that call this only browse: a wrong file is refused as it
    is, never turned into an archive. A locked file is announced before the wait, not after.
    It converts errors itself, not only through :class:`Commands`, because some callers (the
    report's tests, scripts) invoke a command without the top-level group.
    """
    from evosearch.archive.store import Archive

    path = find_db(db)
    note_database(path)
    with user_errors():
        return Archive(path, readonly=True, timeout=ARCHIVE_WAIT_S, on_wait=_say_waiting)


def _say_waiting(message: str) -> None:
    """Tell the user, on stderr, that the archive is held and we wait (SQLite's own wait is silent)."""
    click.echo(f"{terminal_text(message)} ...", err=True)


# -- errors caused by what the user named ----------------------------------------------------------

_DATABASE = "evosearch.database"  # key in click's shared ctx.meta: the archive this command works on


def note_database(path: Path) -> None:
    """Remember the archive this command works on, so that an SQLite error met later can name the file."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_DATABASE] = path


def user_error(err: BaseException) -> BadInput | None:
    """The one-line BadInput for an error caused by a file or path the user named; None for anything else.

    The same files reach many commands (an archive that is not one, a newer or locked one, a
    directory that cannot be created, an output path that cannot be written): each should end
    the same way, in one ``Error:`` line with exit 2, whichever command met it. A programming
    error (``sqlite3.ProgrammingError``) and a closed pipe (click handles EPIPE) are left alone.
    """
    from evosearch.archive.schema import SchemaError

    if isinstance(err, SchemaError):  # a newer archive, or a file that is not one
        return BadInput(_naming_the_database(str(err)))
    if isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.ProgrammingError):
        if "locked" in str(err) or "busy" in str(err):  # SQLite's own words for a file another process holds
            return BadInput(_naming_the_database(f"locked by another process (a campaign, or another program "
                                                 f"writing to it): {err}; try again when it is done", str(err)))
        return BadInput(_naming_the_database(f"cannot open as an evosearch archive: {err}", str(err)))
    if isinstance(err, OSError) and err.errno != errno.EPIPE:
        return BadInput(_os_message(err))
    return None


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors :func:`user_error` knows into its BadInput; let every other one through."""
    try:
        yield
    except (OSError, sqlite3.Error, RuntimeError) as err:  # SchemaError is a RuntimeError
        bad = user_error(err)
        if bad is None:
            raise
        raise bad from err


def _naming_the_database(message: str, original: str | None = None) -> str:
    """``message`` prefixed with the command's database, unless the library's own text already names it."""
    ctx = click.get_current_context(silent=True)
    path = ctx.meta.get(_DATABASE) if ctx is not None else None
    if path is None or str(path) in (original or message):
        return original or message
    return f"{path}: {message}"


def _os_message(err: OSError) -> str:
    """``PATH: Reason`` (``a -> b: Reason`` for a rename), as a person reads it, without Python's ``[Errno N]``."""
    if err.filename is None:
        return err.strerror or str(err)
    where = str(err.filename) + (f" -> {err.filename2}" if err.filename2 is not None else "")
    return f"{where}: {err.strerror}"


class Commands(click.Group):
    """The top-level group: what :func:`user_error` knows ends as one ``Error:`` line and exit 2.

    One place for every command (``run``, ``export``, the browsers...), so that none needs its
    own try/except for the files and paths a user names: a traceback is for evosearch's bugs.
    """

    def invoke(self, ctx: click.Context):
        with user_errors():
            return super().invoke(ctx)


# -- suites --------------------------------------------------------------------------------------


def load_suite(name: str):
    """The suite ``name`` (a shipped suite's name, or a YAML path); a mistake is a BadInput."""
    from evosearch.envs.suites import SuiteError
    from evosearch.envs.suites import load_suite as load

    try:
        return load(name)
    except SuiteError as err:
        raise BadInput(str(err)) from err


# -- the device ----------------------------------------------------------------------------------


class Device(click.ParamType):
    """auto, cpu, cuda or cuda:N: the names the config's evaluation.device accepts (same pattern)."""

    name = "device"

    def convert(self, value, param, ctx):
        if value is None or DEVICE_PATTERN.match(value):
            return value
        self.fail(f"{value!r} is not a device: use auto, cpu, cuda or cuda:N", param, ctx)


def device_option(*, default: str | None, help: str):
    """``--device`` for commands that train: one type and metavar, each command its default and help."""
    return click.option("--device", type=Device(), metavar="[auto|cpu|cuda|cuda:N]", default=default,
                        show_default=default is not None, help=help)


# -- the sandbox ---------------------------------------------------------------------------------

# Names of environment variables that usually hold credentials (OPENAI_API_KEY, HF_TOKEN, ...).
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.IGNORECASE)


def weak_sandbox_warning(mode: Mode, environ: Mapping[str, str] | None = None) -> str | None:
    """The warning for a mode that does not isolate candidates (``rlimits``), or None for a strong one.

    There a job runs as the user, with the host's files and ``/proc`` in view: it can read the
    environment of evosearch's own process (``/proc/<pid>/environ``, where API keys live) and
    files in ``$HOME``. The warning names the variables that look like keys, so the risk is concrete.
    """
    if mode.strong:
        return None
    environ = os.environ if environ is None else environ
    secrets = sorted(name for name, value in environ.items() if value and _SECRET_NAME.search(name))
    named = ""
    if secrets:
        named = f" (set here: {', '.join(secrets[:4])}{', ...' if len(secrets) > 4 else ''})"
    return (f"warning: sandbox mode {mode.name} is weak: candidate code runs as you, not isolated: it can read "
            f"your files, $HOME and this process's environment, API keys included{named}; install bubblewrap, "
            "see `evosearch doctor`")


def warn_if_weak(mode: Mode) -> None:
    """Print :func:`weak_sandbox_warning` on stderr when there is one (``eval``, ``run``)."""
    warning = weak_sandbox_warning(mode)
    if warning:
        click.echo(warning, err=True)
