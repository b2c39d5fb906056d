"""``evosearch plot DB -o DIR``: the archive's figures as PNG or SVG files (matplotlib, no window)."""

from __future__ import annotations

from pathlib import Path

import click

from evosearch.cli.options import BadInput, db_option, open_archive


@click.command("plot")
@db_option
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (default: beside the database, named after it: NAME-figures).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png", show_default=True,
              help="Image format of every figure.")
@click.option("--programs", metavar="ID,...",
              help="Programs whose learning curves and aggregate to show (default: the best); the seeds, the "
              "baselines, are always shown.")
@click.option("--campaign", help="The campaign (needed when the database holds several).")
def plot_command(db: Path | None, out_dir: Path | None, fmt: str, programs: str | None, campaign: str | None) -> None:
    """Write the campaign's figures: progress (best and QD score), coverage, learning curves, aggregate.

    Learning curves show every training seed (thin lines) and their mean (thick); the aggregate
    is the IQM of normalised scores with its 95% stratified bootstrap CI (rliable's definitions).
    """
    from evosearch.browse import BrowseError
    from evosearch.plot import PlotError, parse_ids, write_figures

    archive = open_archive(db)
    out = out_dir or archive.path.with_name(f"{archive.path.stem}-figures")
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a folder")
    try:
        written = write_figures(archive, out, fmt, campaign=campaign, ids=parse_ids(programs))
    except (BrowseError, PlotError) as err:
        raise BadInput(str(err)) from err
    except OSError as err:
        raise BadInput(f"cannot write the figures to {out}: {err}") from err
    finally:
        archive.close()
    for path in written:
        click.echo(path)
