"""`evosearch archive diff|lineage|stats|heatmap` and the `evosearch.browse` library behind them.

The CLI runs as a user runs it (a subprocess) on the real archive of the shared finished
campaign; the edge cases a tiny campaign does not produce (crossover mates, cycles, deep
chains, grids of one or three axes) run on small archives written here by hand.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import cli_in_process, rule_source

from evosearch import browse
from evosearch.archive.descriptors import Axis
from evosearch.archive.store import Archive


def cli(*args: str) -> subprocess.CompletedProcess:
    return cli_in_process("archive", *args)


def ok_json(*args: str):
    proc = cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def csv_rows(*args: str) -> list[dict]:
    proc = cli(*args, "--csv")
    assert proc.returncode == 0, proc.stderr
    return list(csv.DictReader(io.StringIO(proc.stdout)))


def programs(db: Path) -> list[dict]:
    return ok_json("ls", str(db))


def child_of_a_seed(db: Path) -> dict:
    """A program made from a parent by an operator (the tiny campaign always breeds some)."""
    children = [p for p in programs(db) if p["parent_id"] is not None]
    assert children, "the finished campaign bred no child with a parent"
    return children[0]


# -- diff -------------------------------------------------------------------------------------------


def test_diff_against_the_parent_and_another_program(finished):
    db, _ = finished
    child = child_of_a_seed(db)
    data = ok_json("diff", str(child["id"]), str(db))
    assert set(data) >= {"a", "b", "diff", "a_score", "b_score"}
    assert (data["a"], data["b"]) == (child["parent_id"], child["id"])
    assert data["b_score"] == pytest.approx(child["score"])
    assert data["diff"].startswith(f"--- program {child['parent_id']}\n+++ program {child['id']}\n@@ ")
    changed = [line for line in data["diff"].splitlines()[2:] if line[:1] in "+-"]
    assert changed, "an operator child differs from its parent"
    text = cli("diff", str(child["id"]), str(db))
    assert text.returncode == 0 and f"program {child['parent_id']} (" in text.stdout and changed[0] in text.stdout

    seeds = [p["id"] for p in programs(db) if p["operator"] == "seed"]
    other = ok_json("diff", str(seeds[0]), str(seeds[1]), str(db))  # ID OTHER DB: from ID to OTHER
    assert (other["a"], other["b"]) == (seeds[0], seeds[1]) and other["diff"]
    [row] = csv_rows("diff", str(child["id"]), str(db))
    assert list(row)[:5] == ["a", "b", "diff", "a_score", "b_score"] and row["a"] == str(child["parent_id"])


def test_diff_errors_exit_2(finished):
    db, _ = finished
    seed = next(p for p in programs(db) if p["operator"] == "seed")
    proc = cli("diff", str(seed["id"]), str(db))
    assert proc.returncode == 2 and "no parent" in proc.stderr and "seed" in proc.stderr
    proc = cli("diff", "99999", str(db))
    assert proc.returncode == 2 and "no program 99999" in proc.stderr
    proc = cli("diff", str(seed["id"]), "99999", str(db))
    assert proc.returncode == 2 and "no program 99999" in proc.stderr
    proc = cli("diff", str(seed["id"]), "no/such.db")
    assert proc.returncode == 2 and "neither a program id nor an existing database file" in proc.stderr


# -- lineage ----------------------------------------------------------------------------------------


def test_lineage_tree_json_and_csv(finished):
    db, _ = finished
    child = child_of_a_seed(db)
    data = ok_json("lineage", str(child["id"]), str(db))
    assert data["id"] == child["id"] and data["ancestors"] >= 1 and not data["truncated"]
    node, path = data["tree"], []
    while True:
        path.append(node)
        if node["focus"]:
            break
        [node] = node["children"]
    assert path[0]["parent"] is None and path[-1]["id"] == child["id"] and path[-2]["id"] == child["parent_id"]
    assert path[-1]["delta"] == pytest.approx(path[-1]["score"] - path[-2]["score"])
    assert {"id", "operator", "score", "delta", "note", "mates", "children"} <= set(path[-1])

    text = cli("lineage", str(child["id"]), str(db)).stdout
    assert f"lineage of program {child['id']}" in text and f"#{child['parent_id']} " in text
    assert f"#{child['id']} {child['operator']}" in text

    parent = child["parent_id"]
    below = ok_json("lineage", str(parent), str(db), "--descendants")
    assert below["descendants"] >= 1 and child["id"] in [c["id"] for c in below["tree"]["children"]]
    rows = csv_rows("lineage", str(parent), str(db), "--descendants")
    assert list(rows[0])[:3] == ["depth", "id", "parent"] and rows[0]["id"] == str(parent)
    assert {r["id"] for r in rows} >= {str(parent), str(child["id"])}
    assert cli("lineage", str(parent), str(db), "--descendants").stdout.count("#") >= 2

    proc = cli("lineage", "99999", str(db))
    assert proc.returncode == 2 and "no program 99999" in proc.stderr


# -- stats ------------------------------------------------------------------------------------------


def test_stats_progress_operators_and_formats(finished):
    db, summary = finished
    data = ok_json("stats", str(db))
    assert data["campaign"] == "t" and data["llm"] == []
    events = data["events"]
    assert events[0]["kind"] == "start" and events[-1]["kind"] == "stop" and events[-1]["evaluations"] == 6
    assert events[-1]["best"] == pytest.approx(summary.best) and events[-1]["qd_score"] == pytest.approx(
        summary.qd_score)
    assert all(e["elapsed_s"] >= 0 for e in events)
    ops = {r["operator"]: r for r in data["operators"]}
    assert ops["seed"]["evaluated"] == 2 and ops["seed"]["entered"] == 2  # seeds take the empty grid
    assert sum(r["evaluated"] for r in ops.values()) == 6
    assert all(r["entered"] is not None for r in ops.values()), "the replay must reproduce the tiny campaign"
    archive = Archive(db)
    try:
        holders = {r["program_id"] for r in archive.elites(1)}
    finally:
        archive.close()
    assert sum(r["elites"] for r in ops.values()) == len(holders)
    text = cli("stats", str(db)).stdout
    for word in ("progress", "QD score", "coverage", "operators", "entered", "seed", "[finished]"):
        assert word in text, word
    rows = csv_rows("stats", str(db))
    assert list(rows[0])[:8] == ["time", "elapsed_s", "kind", "evaluations", "best", "qd_score", "coverage",
                                 "evals_per_hour"] and len(rows) == len(events)
    op_rows = ok_json("stats", str(db), "--operators")
    assert isinstance(op_rows, list) and op_rows[0]["operator"] == "seed"
    assert list(csv_rows("stats", str(db), "--operators")[0])[:3] == ["operator", "programs", "pending"]
    assert f"of {len(events)} events" in cli("stats", str(db), "--rows", "3").stdout
    proc = cli("stats", str(db), "--campaign", "nope")
    assert proc.returncode == 2 and "no campaign 'nope'" in proc.stderr


# -- heatmap ----------------------------------------------------------------------------------------


def test_heatmap_json_table_csv(finished):
    db, _ = finished
    data = ok_json("heatmap", str(db))
    assert [a["name"] for a in data["axes"]] == ["code_size", "learning_speed"]
    assert all(len(a["labels"]) == a["bins"] for a in data["axes"])
    archive = Archive(db)
    try:
        stored = archive.elites(1)
    finally:
        archive.close()
    assert data["filled"] == len(data["cells"]) == len({r["cell"] for r in stored}) >= 1
    for cell in data["cells"]:
        assert set(cell) >= {"coords", "score", "program_id", "island"} and len(cell["coords"]) == 2
        assert cell["score"] == max(r["score"] for r in stored if r["cell"] == cell["cell"])
    one = ok_json("heatmap", str(db), "--island", "1")
    assert one["island"] == 1 and all(c["island"] == 1 for c in one["cells"])

    text = cli("heatmap", str(db)).stdout
    assert "rows: learning_speed" in text and "columns: code_size" in text and "best of 2 island(s)" in text
    assert f"#{data['cells'][0]['program_id']}" in text and f"{data['cells'][0]['score']:.3f}" in text
    assert data["axes"][0]["labels"][0] in text
    rows = csv_rows("heatmap", str(db))
    assert list(rows[0])[:5] == ["cell", "coords", "score", "program_id", "island"] and len(rows) == data["filled"]
    proc = cli("heatmap", str(db), "--island", "7")
    assert proc.returncode == 2 and "islands 0 to 1" in proc.stderr


# -- hand-made archives: what a tiny campaign does not produce ----------------------------------------

BLOCK_SOURCE = rule_source("reinforce")


def _variant(k: int) -> str:
    return BLOCK_SOURCE.replace("VF_COEF = 0.5", f"VF_COEF = {0.5 + k / 100}")


def _archive(path: Path, descriptors: list[dict], rows: list[dict], *, name: str = "syn") -> Archive:
    """A campaign whose programs are done with the given parents, scores, islands and descriptors; cells filled."""
    archive = Archive(path)
    config = {"archive": {"islands": 2, "qd_offset": 0.0, "descriptors": descriptors}}
    cid = archive.create_campaign(name, "rule", config, {})
    grid = browse.grid_of(config)
    for seq, r in enumerate(rows, 1):
        source = _variant(seq + 1000 * cid)
        parents = r.get("parents", [])
        pid = archive.add_pending(cid, {"kind": "rule", "source": source, "sha": f"{cid}-{seq}",
                                        "operator": r.get("operator", "ast.constant" if parents else "seed"),
                                        "parent_id": parents[0] if parents else None, "parent_ids": parents,
                                        "island": r.get("island"), "note": r.get("note", f"change {seq}")})
        desc = r.get("descriptors", {d["name"]: d["min"] for d in descriptors})
        archive.conn.execute("UPDATE programs SET status = 'done', outcome = 'ok', score = ?, descriptors = ?, "
                             "eval_seq = ? WHERE id = ?", (r["score"], json.dumps(desc), seq, pid))
        coords = browse._coords(grid, json.dumps(desc))
        for island in (range(2) if r.get("island") is None else [r["island"]]):
            archive.conn.execute(
                "INSERT INTO cells (campaign_id, island, cell, coords, program_id, score, updated) VALUES "
                "(?,?,?,?,?,?,'') ON CONFLICT (campaign_id, island, cell) DO UPDATE SET program_id = "
                "excluded.program_id, score = excluded.score WHERE excluded.score > cells.score",
                (cid, island, grid.index(coords), json.dumps(coords), pid, r["score"]))
    return archive


AXES2 = [{"name": "code_size", "min": 20, "max": 200, "bins": 6}, {"name": "learning_speed", "min": 0, "max": 1,
                                                                     "bins": 5}]


def test_lineage_marks_mates_and_survives_cycles_and_depth(tmp_path):
    db = tmp_path / "a.db"
    archive = _archive(db, AXES2, [
        {"score": 1.0}, {"score": 0.8},                       # 1, 2: seeds
        {"score": 1.2, "parents": [1], "island": 0},          # 3
        {"score": 1.1, "parents": [3, 2], "island": 0, "operator": "ast.crossover"},  # 4: mate 2
        {"score": 0.9, "parents": [4], "island": 1, "note": "[/x]"},  # 5: archive text is not markup
        {"score": 1.3, "parents": [4], "island": 0},          # 6
    ])
    data = browse.lineage(archive, 4, descendants=True)
    assert (data["ancestors"], data["descendants"], data["truncated"]) == (2, 2, False)
    rows = browse.lineage_rows(data["tree"])
    assert [(r["depth"], r["id"]) for r in rows] == [(0, 1), (1, 3), (2, 4), (3, 5), (3, 6)]
    four = rows[2]
    assert four["mates"] == [2] and four["focus"] and four["delta"] == pytest.approx(1.1 - 1.2)
    assert browse.lineage(archive, 6, max_depth=1)["truncated"]
    assert browse.lineage(archive, 1, descendants=True, max_nodes=2)["descendants"] == 2
    archive.conn.execute("UPDATE programs SET parent_id = 6 WHERE id = 1")  # damage: 1 -> 3 -> 4 -> 6 -> 1
    cyc = browse.lineage(archive, 6, descendants=True)
    assert cyc["truncated"] and cyc["ancestors"] == 3 and cyc["descendants"] == 0
    archive.close()
    text = cli("lineage", "4", str(db), "--descendants").stdout
    assert "(+ mate #2)" in text and "+0.200" in text and "-0.100" in text and "#5" in text and "#6" in text
    assert "[/x]" in text and "[/x]" in cli("ls", str(db)).stdout


def test_entered_replay_and_its_refusal(tmp_path):
    archive = _archive(tmp_path / "e.db", AXES2, [
        {"score": 1.0}, {"score": 1.5, "parents": [1], "island": 0}, {"score": 1.2, "parents": [1], "island": 0},
    ])
    config = json.loads(archive.campaigns()[0]["config"])
    assert browse.entered_programs(archive, 1, config) == {1, 2}  # 3 lost to 2 in the same cell
    ops = {r["operator"]: r for r in browse.operator_stats(archive, 1)}
    assert ops["ast.constant"]["entered"] == 1 and ops["ast.constant"]["improved"] == 2
    assert ops["ast.constant"]["elites"] == 1 and ops["ast.constant"]["best_program"] == 2
    archive.conn.execute("UPDATE cells SET program_id = 3 WHERE island = 0")  # cells the replay cannot explain
    assert browse.entered_programs(archive, 1, config) is None
    assert all(r["entered"] is None for r in browse.operator_stats(archive, 1))
    archive.close()


def test_stats_name_llm_models_and_their_spend(tmp_path):
    db = tmp_path / "llm.db"
    archive = _archive(db, AXES2, [{"score": 1.0}, {"score": 1.4, "parents": [1], "island": 0, "operator": "llm"}])
    archive.conn.execute("UPDATE programs SET model = 'fast' WHERE id = 2")
    call = {"conversation": 1, "model": "fast", "base_url": "http://127.0.0.1:9/v1", "messages": [], "cost": 0.25,
            "prompt_tokens": 100, "completion_tokens": 20}
    archive.add_llm_calls(1, [{**call, "attempt": 1, "status": "edit_error"}, {**call, "attempt": 2, "status": "ok"}],
                          {"bandit": {"successes": {"llm:fast": 1.0}, "trials": {"llm:fast": 2}}})
    data = browse.stats(archive, 1)
    archive.close()
    assert data["llm"] == [{"model": "fast", "calls": 2, "ok": 1, "programs": 0, "prompt_tokens": 200,
                            "completion_tokens": 40, "cost": 0.5}]
    llm = next(r for r in data["operators"] if r["operator"] == "llm:fast")
    assert llm["ok"] == 1 and llm["improved"] == 1 and llm["bandit_reward"] == 0.5
    text = cli("stats", str(db)).stdout
    assert "llm:fast" in text and "LLM spend $0.5000" in text and "no events recorded yet" in text


def test_heatmap_of_three_axes_and_of_one(tmp_path):
    axes3 = [*AXES2, {"name": "seed_spread", "min": 0, "max": 1, "bins": 4}]
    db = tmp_path / "h.db"
    archive = _archive(db, axes3, [
        {"score": 1.0, "descriptors": {"code_size": 30, "learning_speed": 0.5, "seed_spread": 0.1}},
        {"score": 2.0, "descriptors": {"code_size": 30, "learning_speed": 0.5, "seed_spread": 0.9}},
        {"score": 3.0, "descriptors": {"code_size": 190, "learning_speed": 0.1, "seed_spread": 0.1}},
    ])
    data = browse.heatmap(archive, 1)
    assert data["filled"] == 3 and all(len(c["coords"]) == 3 for c in data["cells"])
    flat = browse.project(data["cells"])
    assert [(c["coords"], c["score"]) for c in flat] == [([0, 2], 2.0), ([5, 0], 3.0)]  # best over seed_spread
    archive.close()
    text = cli("heatmap", str(db)).stdout
    assert "projected onto code_size x learning_speed" in text and "seed_spread" in text
    assert "2.000" in text and "1.000" not in text and "#2" in text

    one = tmp_path / "one.db"
    _archive(one, [{"name": "code_size", "min": 0, "max": 100, "bins": 4}],
             [{"score": 0.5, "descriptors": {"code_size": 60}}]).close()
    data = ok_json("heatmap", str(one))
    assert data["cells"][0]["coords"] == [2] and data["axes"][0]["labels"] == ["<25", "25–50", "50–75", "≥75"]
    assert "0.500" in cli("heatmap", str(one)).stdout


def test_several_campaigns_need_a_name(tmp_path):
    db = tmp_path / "two.db"
    _archive(db, AXES2, [{"score": 1.0}], name="first").close()
    _archive(db, AXES2, [{"score": 2.0}], name="second").close()
    proc = cli("heatmap", str(db))
    assert proc.returncode == 2 and "several campaigns" in proc.stderr and "first, second" in proc.stderr
    assert ok_json("heatmap", str(db), "--campaign", "second")["cells"][0]["score"] == 2.0


def test_diff_of_blocks_keeps_file_line_numbers(tmp_path):
    archive = _archive(tmp_path / "d.db", AXES2, [{"score": 1.0}, {"score": 1.1, "parents": [1], "island": 0}])
    whole = browse.diff(archive, 2)
    block = browse.diff(archive, 2, block=True)
    archive.close()
    changes = [[x for x in d["diff"].splitlines()[2:] if x[:1] in "+-"] for d in (whole, block)]
    assert changes[0] == changes[1] == [f"-VF_COEF = {0.5 + 1001 / 100}", f"+VF_COEF = {0.5 + 1002 / 100}"]
    line = next(i for i, text in enumerate(BLOCK_SOURCE.splitlines(), 1) if text.startswith("VF_COEF"))
    assert re.search(rf"^@@ -{line - 3},\d+ \+{line - 3},\d+ @@$", whole["diff"], re.M)
    assert re.search(rf"^@@ -{line},\d+ \+{line},\d+ @@$", block["diff"], re.M)  # the block starts at VF_COEF


def test_bin_labels_say_where_the_edges_are():
    assert browse.bin_labels(Axis("x", 0.0, 1.0, 1)) == ["all"]
    assert browse.bin_labels(Axis("x", 20.0, 200.0, 3)) == ["<80", "80–140", "≥140"]


def test_diff_lists_the_constants_that_changed(tmp_path):
    db = tmp_path / "c.db"
    archive = _archive(db, AXES2, [{"score": 1.0}, {"score": 1.1, "parents": [1], "island": 0},
                                   {"score": 1.2, "parents": [2], "island": 0}])
    new_term = BLOCK_SOURCE.replace("VF_COEF = 0.5\n", "VF_COEF = 0.5\nENT_COEF = 0.01\n")  # names no longer line up
    archive.conn.execute("UPDATE programs SET source = ? WHERE id = 3", (new_term,))
    archive.conn.commit()
    changed = browse.diff(archive, 2)["constants"]
    assert browse.diff(archive, 3)["constants"] == [] and browse.diff(archive, 2, 2)["constants"] == []
    archive.close()
    before, after = 0.5 + 1001 / 100, 0.5 + 1002 / 100
    assert changed == [{"name": "VF_COEF", "before": before, "after": after}]

    text = cli("diff", "2", str(db)).stdout
    assert f"constants: VF_COEF {before!r} -> {after!r}\n--- program 1" in text
    assert ok_json("diff", "2", str(db))["constants"] == changed
    assert "constants:" not in cli("diff", "3", str(db)).stdout and ok_json("diff", "3", str(db))["constants"] == []
