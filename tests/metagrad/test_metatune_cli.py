"""``evosearch metatune ID``: progress, the stored child, its parent link and its real score; bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import cli_in_process

from evosearch.archive.store import Archive
from evosearch.metagrad.constants import changed_constants


@pytest.fixture
def archive_copy(finished, tmp_path):
    """A copy of the session's finished tiny campaign, and the id of its A2C seed."""
    db = tmp_path / "t.db"
    shutil.copy(finished[0], db)
    archive = Archive(db, readonly=True)
    try:
        seed = next(r for r in archive.list_programs(operator="seed") if archive.program(r["id"])["source"]
                    .startswith('"""Advantage actor-critic'))
    finally:
        archive.close()
    return db, int(seed["id"])


def test_metatune_stores_a_child_with_new_constants_that_the_cascade_scores(archive_copy):
    db, parent_id = archive_copy
    run = cli_in_process("metatune", str(parent_id), "--db", str(db), "--meta-steps", "3", "--population", "2",
                         "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert [r["step"] for r in data["records"]] == [1, 2, 3]
    assert "meta-step   1/3" in run.stderr and "ENT_COEF=" in run.stderr  # progress, on stderr under --json
    child = data["child"]
    archive = Archive(db, readonly=True)
    try:
        row, parent = archive.program(child["id"]), archive.program(parent_id)
        assert row["operator"] == "metatune" and row["parent_id"] == parent_id
        assert row["outcome"] == "ok" and row["score"] == child["score"] is not None  # scored by the cascade
        assert row["note"].startswith("metatune (3 meta-steps):")
        moved = changed_constants(parent["source"], row["source"])
        assert moved and {name for name, _, _ in moved} <= {"ENT_COEF", "VF_COEF", "line 15"}
        assert {c["name"] for c in data["constants"]} == {"ENT_COEF", "VF_COEF", "line 15"}
    finally:
        archive.close()
    diff = cli_in_process("archive", "diff", str(child["id"]), "--db", str(db))
    assert diff.returncode == 0 and "constants: " in diff.stdout


def test_no_store_prints_the_tuned_source_and_changes_nothing(archive_copy):
    db, parent_id = archive_copy
    before = Archive(db, readonly=True)
    count = len(before.list_programs())
    before.close()
    run = cli_in_process("metatune", str(parent_id), "--db", str(db), "--meta-steps", "1", "--population", "2",
                         "--only", "ENT_COEF", "--no-store")
    assert run.returncode == 0, run.stderr
    assert "ENT_COEF: 0.01 ->" in run.stdout and "# EVOLVE-BLOCK-START" in run.stdout
    after = Archive(db, readonly=True)
    assert len(after.list_programs()) == count
    after.close()


@pytest.mark.parametrize(("args", "message"), [
    (["999"], "no program 999"),
    (["{id}", "--only", "NO_SUCH"], "NO_SUCH"),
    (["{id}", "--inner-steps", "99"], "more than the 16 updates of one iteration"),
    (["{id}", "--suite", "no-such-suite"], "no-such-suite"),
    (["{id}", "--device", "tpu"], "is not one of cpu, cuda, cuda:N"),
])
def test_bad_input_gets_one_clear_error(archive_copy, args, message):
    db, parent_id = archive_copy
    run = cli_in_process("metatune", *[a.format(id=parent_id) for a in args], "--db", str(db))
    assert run.returncode == 2 and message in run.stderr, run.stderr
