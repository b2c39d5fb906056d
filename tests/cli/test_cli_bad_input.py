"""Bad input at the command line (issue 16): every case ends in one ``Error:`` line, exit 2, no file touched.

The files are the ones a user points a command at by mistake: a text file, another program's
SQLite database, an archive from a newer evosearch, one another process holds locked, a
directory that cannot be created, an output path that cannot be written. Each test hashes
the files before and after: a refusal must leave everything as it found it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import RULES, TINY_SUITE, campaign_config, cli_in_process

from evosearch.archive.store import Archive
from evosearch.cli import options

# -- helpers ----------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its SHA-256.

    Left out: SQLite's -shm index (shared memory, not data) and an empty -wal, which a
    connection the in-process command left for the garbage collector keeps until it is closed.
    """
    gc.collect()
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith("-shm")
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Assert exit 2 with exactly one ``Error:`` line and no traceback; return that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.rstrip("\n").endswith(errors[0]), proc.stderr  # the error is the last word
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def run_config(folder: Path, **extra) -> Path:
    """A campaign config on the tiny suite, written as YAML into ``folder``."""
    raw = {"name": "fresh", "seeds": [str(RULES / "reinforce.py"), str(RULES / "a2c.py")], "parallel": 1,
           "evaluation": {"suite": TINY_SUITE, "hurdle": False}, "budget": {"max_evals": 2}, **extra}
    path = folder / "t.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def archive_db(tmp_path_factory) -> Path:
    """A real archive: a campaign created with its two seeds, the first marked evaluated ok (nothing trained)."""
    from evosearch.campaign import Campaign

    db = tmp_path_factory.mktemp("archive") / "t.db"
    Campaign(campaign_config(), db_path=db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE programs SET status = 'done', outcome = 'ok', stage = 'full', score = 0.5, eval_seq = 1 "
                     "WHERE id = 1")
    conn.close()
    return db


@pytest.fixture
def folder(tmp_path: Path, archive_db: Path) -> Path:
    """A folder with the files a user may point a command at by mistake, and a copy of a real archive."""
    (tmp_path / "notes.db").write_text("these are my notes, not a database\n")
    (tmp_path / "empty.db").write_bytes(b"")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE photos (path TEXT)")
    other.commit()
    other.close()
    source = sqlite3.connect(archive_db)
    copy = sqlite3.connect(tmp_path / "archive.db")
    source.backup(copy)
    copy.close()
    source.close()
    newer = tmp_path / "newer.db"
    shutil.copy(tmp_path / "archive.db", newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    (tmp_path / "blocker").write_text("a file where a directory would have to be\n")
    return tmp_path


@pytest.fixture
def unchanged(folder: Path) -> Iterator[Path]:
    """The folder; after the test, every file in it exactly as before and no file added."""
    before = snapshot(folder)
    yield folder
    assert snapshot(folder) == before


def held(db: Path, *, readers_too: bool) -> sqlite3.Connection:
    """A connection holding ``db`` locked: writers wait; with ``readers_too`` (exclusive locking) readers too."""
    conn = sqlite3.connect(db, isolation_level=None)
    if readers_too:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT COUNT(*) FROM programs").fetchone()
    else:
        conn.execute("BEGIN IMMEDIATE")
    return conn


@pytest.fixture
def short_waits(monkeypatch):
    """Seconds, not 30, before a locked archive is given up: the CLI's wait and the library's default."""
    monkeypatch.setattr(options, "ARCHIVE_WAIT_S", 0.5)
    monkeypatch.setitem(Archive.__init__.__kwdefaults__, "timeout", 0.5)


# -- run: the archive it is given --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "words"), [
    ("notes.db", ("notes.db", "not an evosearch archive")),
    ("other.db", ("other.db", "not an evosearch archive")),
    ("newer.db", ("newer.db", "newer")),
])
def test_run_refuses_a_file_that_is_not_its_archive(unchanged, name, words):
    refused(cli_in_process("run", str(run_config(unchanged)), "--db", str(unchanged / name)), *words)
    (unchanged / "t.yaml").unlink()  # ours, not the user's


def test_run_refuses_an_archive_another_process_holds(unchanged, short_waits):
    holder = held(unchanged / "archive.db", readers_too=False)
    try:
        config = run_config(unchanged)
        proc = cli_in_process("run", str(config), "--db", str(unchanged / "archive.db"))
        assert "is locked by another process; waiting" in proc.stderr, proc.stderr  # said before the wait
        refused(proc, "archive.db", "locked by another process")
    finally:
        holder.close()
    config.unlink()


def test_run_refuses_a_database_whose_directory_cannot_be_created(unchanged):
    config = run_config(unchanged, db=str(unchanged / "blocker" / "runs" / "t.db"))
    refused(cli_in_process("run", str(config)), "blocker", "Not a directory")
    config.unlink()


# -- export: where it writes --------------------------------------------------------------------------


def test_export_refuses_an_output_it_cannot_write(unchanged):
    db = str(unchanged / "archive.db")
    refused(cli_in_process("export", "1", "--db", db, "--allow-failed", "-o", "/proc/evosearch-export.py"),
            "/proc/evosearch-export.py")
    refused(cli_in_process("export", "--best", "1", "--db", db, "-o", str(unchanged / "blocker" / "best")),
            "blocker", "Not a directory")


# -- browsing: the same files, the same one line --------------------------------------------------------


@pytest.mark.parametrize(("name", "words"), [
    ("notes.db", ("notes.db", "not an evosearch archive")),
    ("empty.db", ("empty.db", "not an evosearch archive")),
    ("other.db", ("other.db", "not an evosearch archive")),
    ("newer.db", ("newer.db", "newer")),
])
@pytest.mark.parametrize("command", [("status",), ("archive", "ls"), ("export", "1", "-o", "x.py")])
def test_browsing_refuses_a_file_that_is_not_an_archive(unchanged, command, name, words):
    refused(cli_in_process(*command, "--db", str(unchanged / name)), *words)


def test_browsing_says_it_waits_for_a_locked_archive_then_refuses(unchanged, short_waits):
    holder = held(unchanged / "archive.db", readers_too=True)
    try:
        proc = cli_in_process("status", "--db", str(unchanged / "archive.db"))
    finally:
        holder.close()
    refused(proc, "archive.db", "locked by another process")
    assert "waiting" in proc.stderr.splitlines()[0]


# -- options that select nothing ------------------------------------------------------------------------


def test_two_output_formats_are_refused(unchanged):
    refused(cli_in_process("status", "--db", str(unchanged / "archive.db"), "--json", "--csv"),
            "--json and --csv are mutually exclusive")


@pytest.mark.parametrize(("option", "words"), [
    (("--outcome", "okk"), ("'okk' is not one of", "'ok'")),
    (("--operator", "nope"), ("no program made by operator 'nope'", "operators there: seed")),
    (("--island", "9"), ("no island 9", "islands 0 to 1")),
    (("--island", "-1"), ("--island",)),
])
def test_listing_filters_are_checked_against_the_known_values(unchanged, option, words):
    refused(cli_in_process("archive", "ls", "--db", str(unchanged / "archive.db"), *option), *words)


def test_listing_filters_that_exist_still_list():
    proc = cli_in_process("archive", "ls", "--help")
    assert "candidate_error" in proc.stdout  # the outcomes are offered in --help


def test_the_cli_knows_every_outcome():
    from evosearch.cli.archive import OUTCOMES
    from evosearch.evaluate.result import OUTCOMES as EVALUATOR_OUTCOMES

    assert OUTCOMES == EVALUATOR_OUTCOMES


# -- suites and the sandbox -------------------------------------------------------------------------------


def test_a_suite_path_that_does_not_exist_is_called_missing(tmp_path):
    missing = tmp_path / "mine.yaml"
    line = refused(cli_in_process("suite", "show", str(missing)), f"no suite file {missing}", "does not exist")
    assert "unknown suite" not in line
    refused(cli_in_process("suite", "show", "no-such-suite"), "unknown suite 'no-such-suite'")


def test_doctor_and_run_agree_on_an_unknown_sandbox_mode(tmp_path):
    refused(cli_in_process("doctor", "--sandbox", "nope", "--no-live"), "unknown sandbox mode 'nope'")
    config = run_config(tmp_path, evaluation={"suite": TINY_SUITE, "sandbox": "nope"})
    assert cli_in_process("run", str(config)).returncode == 2


def test_suite_show_names_the_reference_each_task_was_normalised_against():
    data = json.loads(cli_in_process("suite", "show", "policies", "--json").stdout)
    references = {t["env_id"]: t["reference"] for t in data["tasks"]}
    assert references["CartPole-v1"].endswith("ppo_clip.py")
    assert references["MountainCar-v0"].startswith("fallback_reference")
    lines = {line.split()[1]: line for line in cli_in_process("suite", "show", "policies").stdout.splitlines()
             if line.startswith("  ")}
    assert "ppo_clip.py 272.2" in lines["CartPole-v1"]
    assert "reference -110.0, from fallback_reference" in lines["MountainCar-v0"]
    assert "ppo_clip" not in lines["MountainCar-v0"].split("from")[0] and "PPO-clip -110" not in lines["MountainCar-v0"]
    inline = json.loads(cli_in_process("suite", "show", TINY_SUITE, "--json").stdout)
    assert {t["reference"] for t in inline["tasks"]} == {"set in the suite file"}


def test_doctor_says_bubblewrap_is_installed_when_another_mode_is_chosen():
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed here")
    proc = cli_in_process("doctor", "--sandbox", "namespaces", "--no-live", "--json")
    if proc.returncode == 2:
        pytest.skip(f"namespaces mode is not available here: {proc.stderr.strip()}")
    layer = next(layer for layer in json.loads(proc.stdout)["layers"] if layer["name"] == "bubblewrap")
    assert "not installed" not in layer["detail"] and "installed" in layer["detail"], layer
    assert "apt-get" not in layer["hint"], layer


def test_status_of_an_archive_without_campaigns_says_so(tmp_path):
    db = tmp_path / "new.db"
    Archive(db).close()  # what a campaign leaves when it stops before its first campaign row
    before = snapshot(tmp_path)
    proc = cli_in_process("status", "--db", str(db))
    assert proc.returncode == 0 and proc.stdout == f"no campaigns in {db}\n"
    assert json.loads(cli_in_process("status", "--db", str(db), "--json").stdout) == []
    assert snapshot(tmp_path) == before
