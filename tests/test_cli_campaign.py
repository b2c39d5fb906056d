"""`evosearch status` and `evosearch archive ls|show|best` on a finished campaign, as a user runs them."""

import csv
import io
import json
import subprocess
import sys

import pytest


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evosearch.cli", *args], capture_output=True, text=True, timeout=120)


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
    assert proc.returncode == 2 and "cannot open" in proc.stderr
