"""A copy of the finished tiny campaign with one hostile program added: the report must show it as text."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_helpers import add_hostile_program, copy_db


@pytest.fixture(scope="session")
def hostile(finished, tmp_path_factory) -> tuple[Path, int]:
    """(database, id of the hostile program): the finished campaign plus the hostile program."""
    db = copy_db(finished[0], tmp_path_factory.mktemp("report") / "hostile.db")
    return db, add_hostile_program(db)
