"""Commands for the web page: ``report -o DIR`` (a static site) and ``serve`` (live, on 127.0.0.1)."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from evosearch.cli.options import BadInput, db_option, find_db, open_archive


@click.command("report")
@db_option
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (default: beside the database, named after it: NAME-report).")
def report_command(db: Path | None, out_dir: Path | None) -> None:
    """Write a static web page of the archive: heatmap, programs, diffs, lineage, curves, progress.

    The folder holds index.html and assets/; it opens from file:// and fetches nothing.
    """
    from evosearch.report.site import write_site

    archive = open_archive(db)
    out = out_dir or archive.path.with_name(f"{archive.path.stem}-report")
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a folder")
    try:
        page = write_site(archive, out)
    except OSError as err:
        raise BadInput(f"cannot write the report to {out}: {err}") from err
    finally:
        archive.close()
    click.echo(f"wrote {page}; open {page.resolve().as_uri()}")


@click.command("serve")
@db_option
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback exposes the archive to the network.")
def serve_command(db: Path | None, port: int, host: str) -> None:
    """Serve the archive's web page on HOST:PORT; it refreshes itself while a campaign runs."""
    from evosearch.report.server import serve

    path = find_db(db)
    open_archive(path).close()  # a clear message now for a file that is not an archive, not on the first request
    try:
        serve(path, host=host, port=port)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise BadInput(f"port {port} on {host} is in use: pick another with --port (0 picks a free one)") from err
        raise BadInput(f"cannot serve on {host}:{port}: {err}") from err
