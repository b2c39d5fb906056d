"""``evosearch export``: archived programs as standalone modules for people's own training code.

Two forms, so the common case stays one short line:

    evosearch export ID [--db PATH] -o my_rule.py      # one program
    evosearch export --best N [--db PATH] -o DIR        # the top N, plus DIR/index.md

The database may also come as the last positional (``export ID DB``, ``export --best N DB``).
Both positionals are optional in the second form, so they are parsed by hand: click cannot
tell ``export 5 x.db`` (an id, then a database) from ``export --best 3 x.db`` (a database)
by position alone.
"""

from __future__ import annotations

from pathlib import Path

import click

from evosearch import fmt
from evosearch.cli.options import BadInput, db_option, open_archive, pick_db
from evosearch.cli.render import echo


def _parse(args: tuple[str, ...], best: int | None) -> tuple[int | None, Path | None]:
    """``(program_id, db)`` from the positionals, with a clear message for each misuse."""
    if best is not None:
        if len(args) > 1 or (args and args[0].isdigit() and not Path(args[0]).exists()):
            raise BadInput("give either a program ID or --best N, not both")
        return None, Path(args[0]) if args else None
    if not args:
        raise BadInput("name a program ID to export, or use --best N")
    if len(args) > 2:
        raise BadInput(f"expected ID [DB], got {len(args)} arguments: {' '.join(args)}")
    try:
        program_id = int(args[0])
    except ValueError:
        raise BadInput(f"ID must be a program id (an integer), got {args[0]!r}") from None
    return program_id, Path(args[1]) if len(args) == 2 else None


@click.command("export")
@click.argument("args", nargs=-1, metavar="[ID] [DB]")
@db_option(positional=False)
@click.option("--best", type=click.IntRange(1), default=None, metavar="N",
              help="Export the N best ok programs instead of one.")
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="The module file (ID) or the directory (--best N) to write.")
@click.option("--campaign", help="Only this campaign's programs (with ID: check that the program is in it).")
@click.option("--allow-failed", is_flag=True, help="Export a program whose outcome is not ok (for debugging).")
def export_command(args: tuple[str, ...], db: Path | None, best: int | None, output: Path, campaign: str | None,
                   allow_failed: bool) -> None:
    """Write program ID as a standalone module, or the --best N into a directory.

    The database is --db PATH or the last argument, DB. A rule's module holds its code, a header
    with its provenance (campaign, lineage, scores with 95% CIs, evaluation config) and entry
    points compute_loss and compute_advantages for a CleanRL-style training script; importing it
    needs only torch. A policy's module has ENV_ID, act and act_one for a plain gymnasium loop.
    """
    from evosearch.export import ExportError, export_best, export_program

    program_id, given = _parse(args, best)
    archive = open_archive(pick_db(given, db))
    try:
        if best is not None:
            if output.exists() and not output.is_dir():
                raise BadInput(f"{output} is a file; --best writes a directory")
            written = export_best(archive, best, output, campaign=campaign)
            for path in written:
                click.echo(f"wrote {path}")
            click.echo(f"{len(written) - 1} program(s) exported from {archive.path}")
            return
        row = archive.program(program_id)
        if row is None:
            raise BadInput(f"no program {program_id} in {archive.path}")
        if campaign is not None:
            owner = archive.campaign(campaign)
            if owner is None:
                raise BadInput(f"no campaign {campaign!r} in {archive.path}")
            if owner["id"] != row["campaign_id"]:
                raise BadInput(f"program {program_id} is not in campaign {campaign!r}")
        text = export_program(archive, program_id, allow_failed=allow_failed)
        path = output / f"{row['kind']}_{program_id}.py" if output.is_dir() else output
        if not path.parent.is_dir():
            raise BadInput(f"no directory {path.parent} to write {path.name} into")
        path.write_text(text, encoding="utf-8")
        interval = "" if row["ci_low"] is None else f" {fmt.ci(row['ci_low'], row['ci_high'])}"
        echo(f"wrote {path}: program {program_id} ({fmt.terminal_text(row['operator'])}, outcome "
             f"{fmt.terminal_text(row['outcome'] or row['status'])}, score {fmt.score(row['score'])}{interval})")
    except ExportError as err:
        raise BadInput(str(err)) from err
    finally:
        archive.close()


__all__ = ["export_command"]
