"""The static report: one ``index.html`` with the archive embedded as JSON, plus the packaged assets.

It has to open from ``file://`` (a browser will not ``fetch`` a neighbouring file there), so the
data goes inside the page, in a ``<script type="application/json">`` element that the app parses
and never executes. Archive text is untrusted: a program's comment may hold ``</script>``, which
would end that element early. Escaping ``<``, ``>`` and ``&`` as ``\\u003c`` etc. (and U+2028/9,
which some parsers treat as line ends) keeps the JSON valid and the element closed only by us;
the app then inserts every string with ``textContent``. A Content-Security-Policy that allows
scripts from our own files only is a second line: even an injected inline script would not run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evosearch.archive.store import Archive
from evosearch.report.data import build_data, to_json

ASSETS = ("app.js", "style.css")  # what the page loads; all shipped in evosearch/report/assets/

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}

# connect-src 'self' lets the served page poll data.json; nothing else may be fetched or run.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<title>evosearch report</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/style.css">
</head>
<body>
<header>
  <div class="brand">evosearch <span id="database"></span></div>
  <select id="campaign" aria-label="campaign" hidden></select>
  <nav id="nav">
    <a href="#heatmap" data-view="heatmap">Heatmap</a>
    <a href="#programs" data-view="programs">Programs</a>
    <a href="#program" data-view="program">Program</a>
    <a href="#lineage" data-view="lineage">Lineage</a>
    <a href="#curves" data-view="curves">Curves</a>
    <a href="#progress" data-view="progress">Progress</a>
  </nav>
  <span id="live"></span>
</header>
<main id="view"><noscript>This report needs JavaScript (it runs locally; nothing is fetched).</noscript></main>
<svg id="svg-ns" hidden aria-hidden="true"></svg>
<script type="application/json" id="data">{data}</script>
<script src="assets/app.js"></script>
</body>
</html>
"""


def embed_json(text: str) -> str:
    """JSON made safe inside a ``<script>`` element; ``JSON.parse`` reads it back to the same value."""
    for char, escape in _ESCAPES.items():
        text = text.replace(char, escape)
    return text


def render_page(data: dict) -> str:
    """The page with ``data`` embedded; the same for the static report and the server."""
    return PAGE.format(csp=_CSP, data=embed_json(to_json(data)))


def asset_files() -> dict[str, bytes]:
    """The packaged assets by file name (read through importlib.resources, so it works from a wheel)."""
    folder = resources.files("evosearch.report") / "assets"
    return {name: (folder / name).read_bytes() for name in ASSETS}


def write_site(archive: Archive, out_dir: str | Path) -> Path:
    """Write ``index.html`` and ``assets/`` for ``archive`` into ``out_dir``; return the page's path.

    Only our own files are (over)written: a folder that holds other things keeps them.
    """
    out = Path(out_dir)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    for name, content in asset_files().items():
        (out / "assets" / name).write_bytes(content)
    page = out / "index.html"
    tmp = page.with_suffix(".html.tmp")
    tmp.write_text(render_page(build_data(archive)), encoding="utf-8")
    tmp.replace(page)  # a browser reloading meanwhile sees the old page or the new one, never half of one
    return page


def write_report(db_path: str | Path, out_dir: str | Path) -> Path:
    """Write the static report of the archive at ``db_path`` into ``out_dir``; return ``index.html``'s path."""
    path = Path(db_path)
    if not path.is_file():  # Archive() would create an empty database there
        raise FileNotFoundError(f"no archive database at {path}")
    archive = Archive(path)
    try:
        return write_site(archive, out_dir)
    finally:
        archive.close()


__all__ = ["ASSETS", "asset_files", "embed_json", "render_page", "write_report", "write_site"]
