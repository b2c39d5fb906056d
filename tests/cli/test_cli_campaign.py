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


def llm_check(tmp_path, base_url: str, env: dict | None = None, key_env: str | None = None):
    import os

    from conftest import campaign_config

    raw = json.loads(json.dumps(campaign_config("check").to_dict()))
    raw.pop("source_path")
    raw["llm"] = {"models": [{"name": "fake", "model": "fake-model", "base_url": base_url, "api_key_env": key_env,
                              "max_retries": 0, "timeout_s": 5}]}
    path = tmp_path / "llm.yaml"
    path.write_text(json.dumps(raw))
    return subprocess.run([sys.executable, "-m", "evosearch.cli", "llm", "check", str(path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_llm_check_shows_a_sample_edit(tmp_path):
    from fake_openai import FakeOpenAI

    edit = "<<<<<<< SEARCH\nVF_COEF = 0.5\n=======\nVF_COEF = 0.25\n>>>>>>> REPLACE\n"  # the first seed: reinforce
    with FakeOpenAI([edit], api_key="sekrit") as server:
        proc = llm_check(tmp_path, server.base_url, {"FAKE_KEY": "sekrit"}, "FAKE_KEY")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "answer 1:" in proc.stdout and "prompt +" in proc.stdout
    assert "-VF_COEF = 0.5" in proc.stdout and "+VF_COEF = 0.25" in proc.stdout


def test_llm_check_names_a_wrong_url_or_key(tmp_path):
    from fake_openai import FakeOpenAI

    proc = llm_check(tmp_path, "http://127.0.0.1:9/v1")
    assert proc.returncode == 1 and "FAILED" in proc.stdout and "connection refused" in proc.stdout
    with FakeOpenAI(["unused"], api_key="right") as server:
        proc = llm_check(tmp_path, server.base_url, {"FAKE_KEY": "wrong"}, "FAKE_KEY")
    assert proc.returncode == 1 and "401" in proc.stdout and "FAKE_KEY" in proc.stdout
    proc = llm_check(tmp_path, "http://127.0.0.1:9/v1", key_env="NO_SUCH_KEY_VARIABLE")
    assert proc.returncode == 2 and "NO_SUCH_KEY_VARIABLE is not set" in proc.stderr
