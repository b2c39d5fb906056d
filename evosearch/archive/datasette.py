"""Datasette metadata for archives: what each table and column means, and the outcome and operator values.

The descriptions live in ``datasette.json`` next to this module (shipped with the package). Datasette
keys table metadata by database name, which is the file's stem (``archive/quickstart.db`` is
``quickstart``), so the file holds the descriptions once and :func:`metadata` places them under
each database it is given. From a shell::

    python -m evosearch.archive.datasette archive/quickstart.db > metadata.json
    datasette archive/quickstart.db -m metadata.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


@cache
def descriptions() -> dict[str, Any]:
    """The shipped descriptions: title, description, ``tables`` (description, columns) and ``vocabularies``."""
    text = resources.files("evosearch.archive").joinpath("datasette.json").read_text(encoding="utf-8")
    return json.loads(text)


def vocabulary(name: str) -> dict[str, str]:
    """The values a vocabulary column takes (``outcome``, ``operator``), each with what it means."""
    return dict(descriptions()["vocabularies"][name]["values"])


def table_metadata() -> dict[str, dict[str, Any]]:
    """Datasette's per-table metadata: each table's description and its columns' descriptions.

    A column that holds a vocabulary gets the values and their meanings appended, so the
    table page answers "what does candidate_error mean?" where the reader meets it.
    """
    tables = {name: {"description": t["description"], "columns": dict(t["columns"])}
              for name, t in descriptions()["tables"].items()}
    for vocab in descriptions()["vocabularies"].values():
        values = "; ".join(f"{value}: {meaning}" for value, meaning in vocab["values"].items())
        for qualified in vocab["columns"]:
            table, column = qualified.split(".")
            tables[table]["columns"][column] += f" Values: {values}."
    return tables


def database_name(path: str | Path) -> str:
    """The name Datasette gives the database in a file: its stem."""
    return Path(path).stem


def metadata(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Metadata for ``datasette PATH... -m FILE``: the descriptions under each archive's database name."""
    about = descriptions()
    return {
        "title": about["title"],
        "description": about["description"],
        "databases": {database_name(p): {"description": about["description"], "tables": table_metadata()}
                      for p in paths},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the metadata for the archives named on the command line, as JSON."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m evosearch.archive.datasette ARCHIVE.db... > metadata.json", file=sys.stderr)
        return 2
    json.dump(metadata(paths), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
