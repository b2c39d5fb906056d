"""`evosearch status` and `evosearch archive ...` on a finished campaign, as a user runs them: --db, formats."""

import csv
import io
import json
import subprocess
import sys

import pytest
from conftest import cli_in_process


def cli(*args: str) -> subprocess.CompletedProcess:
    return cli_in_process(*args)  # tests/cli/test_cli_startup.py runs the real command line


def test_status_json(finished):
    db, summary = finished
    proc = cli("status", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["campaign"] == "t" and row["status"] == "finished" and row["pending"] == 0
    assert row["evaluations"] == 6 == sum(row["outcomes"].values()) - row["outcomes"].get("duplicate", 0)
    assert row["best"] == pytest.approx(summary.best) and 0 < row["coverage"] <= 1 and row["cells"] >= 1
    assert "evaluations 6/6" in cli("status", str(db)).stdout


def test_archive_ls_filters_sorts_and_speaks_json_and_csv(finished):
    db, _ = finished
    rows = json.loads(cli("archive", "ls", str(db), "--json").stdout)
    assert len(rows) >= 6 and {"id", "operator", "outcome", "score", "descriptors", "parent_id"} <= set(rows[0])
    assert "source" not in rows[0]
    seeds = json.loads(cli("archive", "ls", str(db), "--operator", "seed", "--json").stdout)
    assert [r["operator"] for r in seeds] == ["seed", "seed"]
    by_score = json.loads(cli("archive", "ls", str(db), "--outcome", "ok", "--sort", "score", "--json").stdout)
    scores = [r["score"] for r in by_score]
    assert scores == sorted(scores, reverse=True) and all(r["outcome"] == "ok" for r in by_score)
    table = list(csv.DictReader(io.StringIO(cli("archive", "ls", str(db), "--csv").stdout)))
    assert len(table) == len(rows) and table[0]["id"] == str(rows[0]["id"])
    assert "programs in" in cli("archive", "ls", str(db)).stdout


def test_archive_best_and_show(finished):
    db, summary = finished
    [best] = json.loads(cli("archive", "best", str(db), "-n", "1", "--json").stdout)
    assert best["id"] == summary.best_program and best["score"] == pytest.approx(summary.best)
    shown = json.loads(cli("archive", "show", str(best["id"]), str(db), "--json").stdout)
    assert "def loss" in shown["source"] and shown["outcome"] == "ok"
    assert shown["metrics"]["tasks"]["CartPole-v1"]["normalized_mean"] is not None
    assert len(shown["evaluations"]) == 2 and shown["evaluations"][0]["curve"]
    text = cli("archive", "show", str(best["id"]), str(db)).stdout
    assert f"program {best['id']}" in text and "def loss" in text and "CartPole-v1" in text


def test_unknown_ids_and_databases_exit_2(finished, tmp_path):
    db, _ = finished
    proc = cli("archive", "show", "99999", str(db))
    assert proc.returncode == 2 and "no program 99999" in proc.stderr
    proc = cli("status", str(tmp_path / "none.db"))
    assert proc.returncode == 2 and "no archive database" in proc.stderr
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    proc = cli("archive", "ls", str(junk))
    assert proc.returncode == 2 and "not an evosearch archive" in proc.stderr


def test_db_option_and_the_positional_db_give_the_same_bytes(finished):
    db, summary = finished
    best = str(summary.best_program)
    for args in (("status",), ("archive", "ls"), ("archive", "best", "-n", "2"), ("archive", "show", best),
                 ("archive", "lineage", best), ("archive", "stats"), ("archive", "heatmap")):
        old = cli(*args, str(db), "--json")
        new = cli(*args, "--db", str(db), "--json")
        assert old.returncode == 0 and old.stdout == new.stdout, (args, old.stderr, new.stderr)
    both = cli("archive", "show", best, str(db), "--db", str(db), "--json")  # the same file twice is fine
    assert both.returncode == 0 and json.loads(both.stdout)["id"] == summary.best_program


def test_archive_diff_takes_db_as_an_option_or_in_either_place(finished):
    db, summary = finished
    rows = json.loads(cli("archive", "ls", "--db", str(db), "--json").stdout)
    child = next(r for r in rows if r["parent_id"] is not None)
    other = next(r["id"] for r in rows if r["id"] != child["id"])
    expected = cli("archive", "diff", str(child["id"]), str(db), "--json").stdout
    assert cli("archive", "diff", str(child["id"]), "--db", str(db), "--json").stdout == expected
    expected = cli("archive", "diff", str(child["id"]), str(other), str(db), "--json").stdout
    assert json.loads(expected)["a"] == child["id"] and json.loads(expected)["b"] == other
    assert cli("archive", "diff", str(child["id"]), str(other), "--db", str(db), "--json").stdout == expected


def test_two_different_databases_or_two_formats_are_a_usage_error(finished, tmp_path):
    db, _ = finished
    other = tmp_path / "other.db"
    other.write_bytes(db.read_bytes())
    for args in (("status", str(db), "--db", str(other)), ("archive", "ls", str(other), "--db", str(db)),
                 ("archive", "diff", "1", "2", str(db), "--db", str(other)),
                 ("export", "1", str(db), "--db", str(other), "-o", str(tmp_path / "x.py")),
                 ("report", str(db), "--db", str(other), "-o", str(tmp_path / "site"))):
        proc = cli(*args)
        assert proc.returncode == 2 and "two databases named" in proc.stderr, (args, proc.stderr)
    proc = cli("status", "--db", str(db), "--json", "--csv")
    assert proc.returncode == 2 and "--json and --csv are mutually exclusive" in proc.stderr
    proc = cli("archive", "show", "1", "--db", str(db), "--csv")
    assert proc.returncode == 2 and "no CSV output" in proc.stderr


def test_the_only_database_under_archive_is_the_default(finished, tmp_path):
    db, _ = finished
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "only.db").write_bytes(db.read_bytes())
    here = subprocess.run([sys.executable, "-m", "evosearch.cli", "status", "--json"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    assert json.loads(here.stdout) == json.loads(cli("status", "--db", str(db), "--json").stdout)
    (tmp_path / "archive" / "second.db").write_bytes(db.read_bytes())
    two = subprocess.run([sys.executable, "-m", "evosearch.cli", "status"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert two.returncode == 2 and "several databases" in two.stderr and "--db" in two.stderr


def test_status_csv_and_table(finished):
    db, _ = finished
    [row] = list(csv.DictReader(io.StringIO(cli("status", "--db", str(db), "--csv").stdout)))
    assert row["campaign"] == "t" and json.loads(row["outcomes"])
    assert cli("status", "--db", str(db), "--table").stdout == cli("status", str(db)).stdout


def test_report_and_export_take_db(finished, tmp_path):
    db, summary = finished
    proc = cli("report", "--db", str(db), "-o", str(tmp_path / "site"))
    assert proc.returncode == 0 and (tmp_path / "site" / "index.html").is_file(), proc.stderr
    proc = cli("export", str(summary.best_program), "--db", str(db), "-o", str(tmp_path / "rule.py"))
    assert proc.returncode == 0 and "def compute_loss(" in (tmp_path / "rule.py").read_text(), proc.stderr
    proc = cli("export", "--best", "1", "--db", str(db), "-o", str(tmp_path / "top"))
    assert proc.returncode == 0 and (tmp_path / "top" / "index.md").is_file(), proc.stderr


def test_run_exits_3_and_says_why_when_the_machine_keeps_failing(tmp_path, monkeypatch):
    from conftest import RULES, broken_machine_evaluator, campaign_config

    import evosearch.campaign

    raw = campaign_config("broken", seeds=[str(RULES / "a2c.py")], parallel=1,
                          budget={"max_evals": 5, "pause_after_failures": 2}).to_dict()
    raw.pop("source_path")
    path = tmp_path / "broken.yaml"
    path.write_text(json.dumps(raw))
    monkeypatch.setattr(evosearch.campaign, "default_evaluator", lambda config: broken_machine_evaluator())
    proc = cli_in_process("run", str(path), "--db", str(tmp_path / "broken.db"))
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    said = " ".join(proc.stdout.split())
    assert "stopped: paused: the last 2 evaluations failed outside the programs' code (infra_error" in said
    assert "evaluations 0" in said
    status = cli_in_process("status", "--db", str(tmp_path / "broken.db"), "--json")
    assert json.loads(status.stdout)[0]["status"] == "paused"
