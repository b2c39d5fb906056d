"""`evosearch suite list|show` in each output format."""

import csv
import io
import json
import subprocess

from conftest import cli_in_process


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return cli_in_process(*args)  # in this process: each suite loads torch, ~2 s in a fresh interpreter


def test_suite_list_json():
    proc = run_cli("suite", "list", "--json")
    assert proc.returncode == 0
    names = {row["name"] for row in json.loads(proc.stdout)}
    assert {"classic-quick", "classic"} <= names


def test_suite_list_csv_and_table_agree_with_the_json():
    rows = json.loads(run_cli("suite", "list", "--json").stdout)
    table = list(csv.DictReader(io.StringIO(run_cli("suite", "list", "--csv").stdout)))
    assert [r["name"] for r in table] == [r["name"] for r in rows]
    assert json.loads(table[0]["tasks"]) == rows[0]["tasks"]  # lists are JSON text in a cell
    text = run_cli("suite", "list", "--table").stdout
    assert all(r["name"] in text for r in rows) and text == run_cli("suite", "list").stdout


def test_suite_show_formats():
    data = json.loads(run_cli("suite", "show", "classic-quick", "--json").stdout)
    assert data["name"] == "classic-quick" and data["kind"] == "rule" and data["tasks"]
    assert {"env_id", "role", "total_steps", "backend", "r_random", "r_ref"} <= set(data["tasks"][0])
    table = list(csv.DictReader(io.StringIO(run_cli("suite", "show", "classic-quick", "--csv").stdout)))
    assert [r["env_id"] for r in table] == [t["env_id"] for t in data["tasks"]]
    text = run_cli("suite", "show", "classic-quick").stdout
    assert text.startswith("classic-quick: ") and all(t["env_id"] in text for t in data["tasks"])
    proc = run_cli("suite", "show", "no-such-suite")
    assert proc.returncode == 2
