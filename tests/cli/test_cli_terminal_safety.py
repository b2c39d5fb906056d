"""Candidates' text on the terminal (issue 15): shown as characters, never obeyed, never read as markup.

A hostile rule (``tests/sandbox/hostile/terminal_escapes.py``) prints escape sequences, a bidi
override and ``[/red]``, and raises an error that holds them too. It is evaluated by the real
command on a real terminal (a pty), then stored in a copy of a finished campaign with an LLM
call, a note, an operator and a model name made of the same text, and every view of the archive
is shown. Nothing a terminal acts on may reach the output, nothing may crash, and the data
outputs (JSON; CSV into a pipe) must keep the exact text.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import ROOT, TINY_SUITE, on_a_terminal
from report_helpers import copy_db

HOSTILE_RULE = ROOT / "tests" / "sandbox" / "hostile" / "terminal_escapes.py"
#: Names, notes and errors a hostile archive might hold: controls, a window title, bidi, markup, a fake line.
HOSTILE = "x\x1b[2J\x1b]0;pwned\x07\x9b2J\u202eeulav\u202c[/red][bold]\nscore 9.999"
#: The hostile rule's own colour: rich never emits it, so if it shows up, the program's text leaked.
ITS_COLOUR = "\x1b[5;38;5;82m"


def unsafe(text: str, allow: str = "\n\t") -> list[str]:
    """The characters in ``text`` that a terminal would act on or that disguise text."""
    return [c for c in text if c not in allow and (c < " " or "\x7f" <= c <= "\x9f"
                                                   or unicodedata.category(c) in ("Cf", "Cs"))]


def cli(*args: str) -> subprocess.CompletedProcess:
    """The command line in this process, as ``conftest.cli_in_process``, but with click's colour
    stripping off (``color=True``), as on a terminal: what the commands write is what is checked."""
    from click.testing import CliRunner

    from evosearch.cli import main

    result = CliRunner().invoke(main, list(args), prog_name="evosearch", color=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(["evosearch", *args], result.exit_code, result.stdout, result.stderr)




# -- evosearch eval ----------------------------------------------------------------------------------


def test_eval_on_a_terminal_shows_the_programs_controls_as_text():
    shown = on_a_terminal("eval", str(HOSTILE_RULE), "--suite", TINY_SUITE)
    assert "candidate_error" in shown and "AssertionError: hostile" in shown, shown
    assert "Traceback" not in shown.split("the job's traceback and output")[0]  # no crash of the command itself
    assert "[/red][bold]fake[/bold]" in shown and "score 9.999" in shown  # the words, as text
    assert ITS_COLOUR not in shown and "\x1b[2J" not in shown and "\x1b]" not in shown and "\x1bc" not in shown
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # what rich itself adds: colours, bold
    assert unsafe(text, allow="\n\t\r") == []  # \r: the pty's own line ends
    assert not any(line.startswith(("score", "9.999")) for line in text.splitlines())  # no fake line of ours


@pytest.fixture(scope="module")
def evaluated() -> dict:
    """The hostile rule's result as ``eval --json`` gives it: the exact text, escapes and all."""
    proc = subprocess.run([sys.executable, "-m", "evosearch.cli", "eval", str(HOSTILE_RULE), "--suite", TINY_SUITE,
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert unsafe(proc.stdout) == []  # JSON writes every control as an escape
    result = json.loads(proc.stdout)
    assert "\x1b[2J" in result["error"] and "\u202e" in result["error"] and "[/red]" in result["error"]
    assert "\x1b[2J" in result["output_tail"]  # the program ran and printed: the attack is real
    return result


# -- the archive's views -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_archive(finished, evaluated, tmp_path_factory) -> tuple[Path, int]:
    """A copy of the finished campaign plus the hostile rule, as a child of the first seed: its source,
    error and output as ``eval`` gave them; its note, operator, model and LLM call made of HOSTILE, and
    so are the campaign's name and an event's kind (a file from elsewhere can hold anything)."""
    from evosearch.archive.store import Archive, dumps

    db = copy_db(finished[0], tmp_path_factory.mktemp("escapes") / "escapes.db")
    archive = Archive(db)
    try:
        campaign = archive.campaigns()[0]
        seed = archive.conn.execute("SELECT id FROM programs WHERE operator = 'seed' ORDER BY id").fetchone()
        source = HOSTILE_RULE.read_text()
        call = {"conversation": 1, "model": HOSTILE, "base_url": "http://127.0.0.1:9/v1", "attempt": 1,
                "status": "ok", "messages": [{"role": "user", "content": HOSTILE}], "response": HOSTILE,
                "error": HOSTILE}
        program_id = archive.add_pending(campaign["id"], {
            "kind": "rule", "source": source, "sha": "e" * 64, "parent_id": seed["id"], "parent_ids": [seed["id"]],
            "operator": HOSTILE, "model": HOSTILE, "island": 0, "generation": 1, "note": HOSTILE}, llm_calls=[call])
        with archive.transaction() as conn:
            conn.execute("UPDATE programs SET status = 'done', outcome = ?, stage = ?, error = ?, output_tail = ?, "
                         "descriptors = ?, metrics = ?, eval_seq = 1000, evaluated = created WHERE id = ?",
                         (evaluated["outcome"], evaluated["stage"], evaluated["error"], evaluated["output_tail"],
                          dumps({}), dumps({"tasks": {}}), program_id))
            conn.execute("UPDATE campaigns SET name = ? WHERE id = ?", (HOSTILE, campaign["id"]))
        archive.add_event(campaign["id"], HOSTILE, 7, {"best": None, "qd_score": 0.0, "coverage": 0.0}, None)
    finally:
        archive.close()
    return db, program_id


VIEWS = {
    "ls": ("archive", "ls"),
    "show": ("archive", "show", "{id}"),
    "lineage": ("archive", "lineage", "{id}"),
    "descendants": ("archive", "lineage", "{seed}", "--descendants"),
    "diff": ("archive", "diff", "{id}"),
    "stats": ("archive", "stats"),
    "operators": ("archive", "stats", "--operators"),
    "heatmap": ("archive", "heatmap"),
    "status": ("status",),
}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_every_view_of_the_archive_shows_hostile_text_as_text(hostile_archive, view):
    db, program_id = hostile_archive
    seed = json.loads(cli("archive", "show", str(program_id), "--db", str(db), "--json").stdout)["parent_id"]
    args = [a.format(id=program_id, seed=seed) for a in VIEWS[view]]
    proc = cli(*args, "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert unsafe(proc.stdout + proc.stderr) == []
    assert not any(line.startswith("score 9.999") for line in proc.stdout.splitlines())  # not at the margin
    if view in ("show", "lineage", "descendants", "diff", "operators", "stats", "heatmap", "status"):
        assert "eulav" in proc.stdout, proc.stdout  # the hostile text is there, as characters
    if view == "show":
        assert "[/red][bold]fake[/bold]" in proc.stdout and "AssertionError: hostile" in proc.stdout


def test_a_hostile_name_cannot_start_a_line_of_its_own(hostile_archive):
    db, program_id = hostile_archive
    shown = cli("archive", "lineage", str(program_id), "--db", str(db)).stdout
    assert not any(line.lstrip().startswith("score 9.999") for line in shown.splitlines()), shown


def test_json_and_piped_csv_keep_the_exact_text(hostile_archive, evaluated):
    db, program_id = hostile_archive
    shown = json.loads(cli("archive", "show", str(program_id), "--db", str(db), "--json").stdout)
    assert shown["note"] == shown["operator"] == HOSTILE and shown["error"] == evaluated["error"]
    assert shown["llm_calls"][0]["model"] == HOSTILE
    rows = list(csv.DictReader(io.StringIO(cli("archive", "ls", "--db", str(db), "--csv").stdout, newline="")))
    assert next(r for r in rows if r["id"] == str(program_id))["note"] == HOSTILE


def test_csv_on_a_terminal_is_made_safe(hostile_archive, monkeypatch):
    from evosearch.cli import options

    db, program_id = hostile_archive
    monkeypatch.setattr(options, "_stdout_is_terminal", lambda: True)
    proc = cli("archive", "ls", "--db", str(db), "--csv")
    assert proc.returncode == 0 and unsafe(proc.stdout) == [] and "eulav" in proc.stdout


def test_export_and_errors_that_quote_the_archive(hostile_archive, tmp_path):
    db, program_id = hostile_archive
    proc = cli("export", str(program_id), "--db", str(db), "-o", str(tmp_path / "x.py"), "--allow-failed")
    assert proc.returncode == 0, proc.stderr
    assert unsafe(proc.stdout + proc.stderr) == [] and "eulav" in proc.stdout
    from evosearch.cli.options import BadInput

    assert unsafe(BadInput(f"no campaign {HOSTILE}").format_message()) == []


# -- the campaign's progress and the LLM check -------------------------------------------------------


def _progress(**changes):
    from evosearch.campaign import Progress

    fields = dict(name=HOSTILE, evaluations=3, max_evals=10, in_flight=1, best=0.5, qd_score=1.0, coverage=0.1,
                  cells=2, evals_per_hour=60.0, outcomes={"ok": 2, HOSTILE: 1}, proposal_errors=0, elapsed_s=5.0,
                  minutes=None, stopping=HOSTILE, llm_spend=0.01, llm_cap=1.0, llm_models={HOSTILE: HOSTILE})
    return Progress(**{**fields, **changes})


@pytest.mark.parametrize("terminal", [False, True])
def test_the_progress_view_shows_outside_text_as_text(terminal):
    from rich.console import Console

    from evosearch.progress import ProgressView

    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=120, color_system="standard" if terminal else None)
    with ProgressView(console) as view:
        view(_progress())
        view(_progress(evaluations=4))
    shown = out.getvalue()
    assert "eulav" in shown and "[/red]" in shown
    if terminal:  # the live panel: rich's own cursor moves and colours, none of the hostile text's
        assert "\x1b]" not in shown and "\x1b[2J" not in shown and "\x9b" not in shown and "\u202e" not in shown
    else:
        assert unsafe(shown) == []
        assert not any(line.startswith("score 9.999") for line in shown.splitlines())


def test_llm_check_shows_an_endpoints_text_as_text(tmp_path):
    from conftest import campaign_config
    from fake_openai import FakeOpenAI

    raw = json.loads(json.dumps(campaign_config("check").to_dict()))
    raw.pop("source_path")
    raw["llm"] = {"models": [{"name": "fake", "model": "fake-model", "base_url": "", "max_retries": 0,
                              "timeout_s": 5}]}
    comment = HOSTILE.replace("\n", " ")  # a comment on one line: the edit stays valid Python
    edit = f"<<<<<<< SEARCH\nVF_COEF = 0.5\n=======\nVF_COEF = 0.25  # {comment}\n>>>>>>> REPLACE\n"
    with FakeOpenAI([edit]) as server:
        raw["llm"]["models"][0]["base_url"] = server.base_url
        path = tmp_path / "llm.yaml"
        path.write_text(json.dumps(raw))
        proc = cli("llm", "check", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert unsafe(proc.stdout + proc.stderr) == [] and "VF_COEF = 0.25" in proc.stdout



def test_the_campaign_log_is_safe_to_tail():
    import logging

    from evosearch.cli.campaign import LogFormatter

    record = logging.LogRecord("evosearch", logging.INFO, __file__, 1, "#%d failed (%s)", (7, HOSTILE), None)
    [line] = LogFormatter("%(levelname)s %(message)s").format(record).splitlines()  # one entry, one line
    assert unsafe(line) == [] and line.startswith("INFO #7 failed (x") and "eulav" in line
    try:
        raise RuntimeError(HOSTILE)
    except RuntimeError:
        record = logging.LogRecord("evosearch", logging.ERROR, __file__, 1, "crashed", (), sys.exc_info())
    entry = LogFormatter("%(message)s").format(record)
    assert unsafe(entry) == [] and "Traceback" in entry and len(entry.splitlines()) > 2
