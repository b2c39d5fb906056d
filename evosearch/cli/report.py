"""Commands for the web page: ``report DB -o DIR`` (a static site) and ``serve DB`` (live, on 127.0.0.1)."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from evosearch.cli_campaign import BadInput, _find_db, _open


@click.command("report")
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (default: beside DB, named DB-report).")
def report_command(db: Path | None, out_dir: Path | None) -> None:
    """Write a static web page of the archive DB: heatmap, programs, diffs, lineage, curves, progress.

    The folder holds index.html and assets/; it opens from file:// and fetches nothing.
    """
    from evosearch.report.site import write_site

    archive = _open(db)
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
@click.argument("db", required=False, type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback exposes the archive to the network.")
def serve_command(db: Path | None, port: int, host: str) -> None:
    """Serve the archive DB's web page on HOST:PORT; it refreshes itself while a campaign runs."""
    from evosearch.report.server import serve

    path = _find_db(db)
    _open(path).close()  # a clear message now for a file that is not an archive, not on the first request
    try:
        serve(path, host=host, port=port)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise BadInput(f"port {port} on {host} is in use: pick another with --port (0 picks a free one)") from err
        raise BadInput(f"cannot serve on {host}:{port}: {err}") from err
