"""``evosearch agent dataset``: SFT pairs and RL states from real campaign archives.

Two archives: the session's real tiny campaign (``finished``: real training, a few programs)
and a longer campaign whose scores are scripted (its own prompt templates, so the prompt is
seen to follow the campaign's config), with the real operators proposing and the real
archive storing everything.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from conftest import campaign_config, cli_in_process
from report_helpers import copy_db, finished_result

from evosearch.agent.dataset import (
    SFT_FILE,
    STATES_FILE,
    SUMMARY_FILE,
    WARMUP_FILE,
    best_before,
    build_datasets,
    prompt_seed,
)
from evosearch.archive.selection import as_parent
from evosearch.archive.store import Archive
from evosearch.campaign_llm import LlmDriver
from evosearch.config import LLMModelConfig, config_dir, config_from_dict, llm_template_dir
from evosearch.propose.llm import LlmProposer, LlmRequest
from evosearch.propose.llm_edits import apply_response

MARKER = "SYSTEM-TEMPLATE-OF-THIS-CAMPAIGN"
SFT_META = {"db", "campaign", "parent_id", "child_id", "operator", "gain", "child_fingerprint"}
STATE_KEYS = {"prompt", "parent_source", "parent_score", "parent_fingerprint", "kind", "suite", "meta"}
STATE_META = {"db", "campaign", "program_id", "evaluations_before"}


class Scripted:
    """Scores from the source's hash, about one program in seven failing: a test of the data, not of training."""

    def evaluate(self, program, skip_if=None):
        from evosearch.evaluate import EvalResult

        h = int(program.sha[:8], 16)
        if h % 7 == 0:
            return EvalResult(outcome="candidate_error", stage="smoke", fingerprint=program.sha[:16],
                              error="scripted failure")
        result = finished_result((h % 1000) / 500)
        result.fingerprint = program.sha[:16]
        return result


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Path:
    """A 40-evaluation campaign with its own system prompt template and two inspirations per prompt."""
    from evosearch.campaign import Campaign

    root = tmp_path_factory.mktemp("agent-dataset")
    templates = root / "templates"
    templates.mkdir()
    (templates / "system.txt").write_text(f"{MARKER}\n\n$contract\n\n$scoring\n\n$edit_rules\n")
    config = campaign_config("scripted", budget={"max_evals": 40}, selection={"inspirations": 2},
                             llm={"template_dir": str(templates)})
    db = root / "scripted.db"
    campaign = Campaign(config, db_path=db, evaluator=Scripted())
    campaign.run()
    campaign.close()
    return db


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def programs(db: Path) -> dict[int, sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return {r["id"]: r for r in conn.execute("SELECT * FROM programs")}
    finally:
        conn.close()


def expected_prompt(db: Path, program_id: int) -> list[dict]:
    """What the campaign's LLM proposer sends for ``program_id``, built here from the campaign's own parts.

    The inspirations are chosen independently of the module: the best ok programs evaluated
    before it, one per fingerprint, as many as the campaign's selection asks for.
    """
    archive = Archive(db, readonly=True)
    try:
        row = archive.program(program_id)
        campaign = archive.campaign_by_id(row["campaign_id"])
        config = config_from_dict(json.loads(campaign["config"]))
        count = max(1, config.selection.inspirations)
        earlier = archive.conn.execute(
            "SELECT * FROM programs WHERE campaign_id = ? AND status = 'done' AND outcome = 'ok' AND score IS NOT NULL"
            " AND eval_seq < ? ORDER BY score DESC, eval_seq", (row["campaign_id"], row["eval_seq"])).fetchall()
        mates, seen = [], set()
        for other in earlier:
            if other["fingerprint"] not in seen and len(mates) < count:
                seen.add(other["fingerprint"])
                mates.append(as_parent(other))
        driver = LlmDriver(config, archive, row["campaign_id"], {}, lambda fp: False, lambda src: None)
        proposer = LlmProposer(config.llm, llm_template_dir(config.llm, config_dir(config)))
        request = LlmRequest(
            model=LLMModelConfig(model="any", base_url="http://localhost:1"), kind=config.kind,
            parent=as_parent(row), feedback=driver.feedback(program_id),
            inspirations=[(m, driver.feedback(m.program_id)) for m in mates],
            seed=prompt_seed(campaign["name"], program_id), source_known=lambda sha: False,
            fingerprint_known=lambda fp: False, fingerprint=lambda src: None)
        return proposer.messages(request)
    finally:
        archive.close()


@pytest.fixture(scope="module")
def built(scripted, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("built") / "data"
    return out, build_datasets([scripted], out)


def test_every_sft_completion_applies_to_its_parent_and_gives_the_child(finished, scripted, tmp_path):
    summary = build_datasets([finished[0], scripted], tmp_path, min_gain=-math.inf)  # every scored pair
    rows = read_jsonl(tmp_path / SFT_FILE)
    assert rows and summary.sft_rows == len(rows)
    assert {Path(r["meta"]["db"]) for r in rows} == {finished[0], scripted}
    known = {str(finished[0]): programs(finished[0]), str(scripted): programs(scripted)}
    for row in rows:
        meta = row["meta"]
        assert set(meta) == SFT_META
        parent, child = known[meta["db"]][meta["parent_id"]], known[meta["db"]][meta["child_id"]]
        assert child["parent_id"] == parent["id"] and child["operator"] == meta["operator"]
        assert meta["gain"] == pytest.approx(child["score"] - parent["score"])
        assert meta["child_fingerprint"] == child["fingerprint"]
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert [m["role"] for m in row["completion"]] == ["assistant"]
        answer = row["completion"][0]["content"]
        assert apply_response(parent["source"], answer, parent["kind"]) == (child["source"], "diff")
    operators = {r["meta"]["operator"] for r in rows}
    assert any(op.startswith("ast.") for op in operators), operators


def test_only_children_that_beat_their_parent_by_min_gain(scripted, built, tmp_path):
    out, summary = built
    gains = [r["meta"]["gain"] for r in read_jsonl(out / SFT_FILE)]
    assert gains and min(gains) > 0
    assert summary.skipped["no_gain"] > 0 and summary.skipped["child_not_scored"] > 0
    threshold = (min(gains) + max(gains)) / 2
    strict = build_datasets([scripted], tmp_path, min_gain=threshold)
    assert 0 < strict.sft_rows < summary.sft_rows
    assert min(r["meta"]["gain"] for r in read_jsonl(tmp_path / SFT_FILE)) > threshold


def test_the_prompt_is_what_the_campaigns_proposer_builds_for_the_parent(scripted, built):
    out, _ = built
    rows = read_jsonl(out / SFT_FILE)
    states = {r["meta"]["program_id"]: r for r in read_jsonl(out / STATES_FILE)}
    for row in rows:
        parent_id = row["meta"]["parent_id"]
        assert row["prompt"] == expected_prompt(scripted, parent_id)
        assert row["prompt"] == states[parent_id]["prompt"]  # one parent, one step: one prompt
        assert row["prompt"][0]["content"].startswith(MARKER)  # the campaign's own template
        assert programs(scripted)[parent_id]["source"].rstrip("\n") in row["prompt"][1]["content"]
    shown = [r["prompt"][1]["content"].count("## Program ") for r in states.values()]
    assert 0 in shown and 2 in shown and max(shown) == 2  # the first parents see none; later ones the campaign's 2


def test_inspirations_come_only_from_programs_evaluated_before(scripted):
    rows = list(programs(scripted).values())
    chosen = best_before(rows, 2)
    by_id = {r["id"]: r for r in rows}
    assert any(chosen.values())
    for program_id, mates in chosen.items():
        assert len(mates) <= 2 and program_id not in mates
        assert all(by_id[m]["eval_seq"] < by_id[program_id]["eval_seq"] for m in mates)
        assert all(by_id[m]["outcome"] == "ok" for m in mates)
        assert [by_id[m]["score"] for m in mates] == sorted((by_id[m]["score"] for m in mates), reverse=True)


def test_diversity_one_row_per_fingerprint_capped_per_parent_no_repeated_edit(finished, scripted, tmp_path):
    summary = build_datasets([finished[0], scripted], tmp_path, max_per_parent=1, min_gain=-math.inf)
    rows = read_jsonl(tmp_path / SFT_FILE)
    fingerprints = [r["meta"]["child_fingerprint"] for r in rows]
    assert len(fingerprints) == len(set(fingerprints))
    per_parent = Counter((r["meta"]["db"], r["meta"]["parent_id"]) for r in rows)
    assert max(per_parent.values()) == 1
    texts = [" ".join(r["completion"][0]["content"].split()) for r in rows]
    assert len(texts) == len(set(texts))
    assert summary.skipped["parent_cap"] > 0
    wider = build_datasets([finished[0], scripted], tmp_path / "wider", max_per_parent=3, min_gain=-math.inf)
    assert wider.sft_rows > summary.sft_rows
    assert max(Counter((r["meta"]["db"], r["meta"]["parent_id"])
                       for r in read_jsonl(tmp_path / "wider" / SFT_FILE)).values()) <= 3


def test_the_best_gain_of_a_behaviour_is_kept(scripted, tmp_path):
    twin_db = copy_db(scripted, tmp_path / "twin.db")
    summary = build_datasets([scripted, twin_db], tmp_path / "out", min_gain=-math.inf)
    alone = build_datasets([scripted], tmp_path / "alone", min_gain=-math.inf)
    assert summary.sft_rows == alone.sft_rows  # the copy's children are the same behaviours
    assert summary.skipped["duplicate_fingerprint"] >= alone.sft_rows
    kept = read_jsonl(tmp_path / "out" / SFT_FILE)
    assert {r["meta"]["db"] for r in kept} == {str(scripted)}  # equal gains: the first archive's rows


def test_states_are_the_parents_at_their_step(scripted, built):
    out, summary = built
    states = read_jsonl(out / STATES_FILE)
    rows = programs(scripted)
    parents = {r["parent_id"] for r in rows.values() if r["parent_id"] is not None}
    ok_parents = {p for p in parents if rows[p]["outcome"] == "ok"}
    assert {s["meta"]["program_id"] for s in states} == ok_parents
    assert summary.states == len(states) == len(ok_parents)
    for state in states:
        assert set(state) == STATE_KEYS and set(state["meta"]) == STATE_META
        program = rows[state["meta"]["program_id"]]
        assert state["parent_source"] == program["source"]
        assert state["parent_score"] == program["score"]
        assert state["parent_fingerprint"] == program["fingerprint"]
        assert state["meta"]["evaluations_before"] == program["eval_seq"]
        assert (state["kind"], state["suite"], state["meta"]["campaign"]) == ("rule", "tiny", "scripted")
        assert state["prompt"] == expected_prompt(scripted, program["id"])


def test_hugging_face_datasets_loads_both_files(built, tmp_path):
    datasets = pytest.importorskip("datasets")
    out, summary = built
    sft = datasets.load_dataset("json", data_files=str(out / SFT_FILE), split="train", cache_dir=str(tmp_path))
    assert len(sft) == summary.sft_rows
    assert {"prompt", "completion", "meta"} <= set(sft.column_names)
    assert sft[0]["prompt"][0]["role"] == "system"
    states = datasets.load_dataset("json", data_files=str(out / STATES_FILE), split="train", cache_dir=str(tmp_path))
    assert len(states) == summary.states and set(states.column_names) == STATE_KEYS


def test_the_summary_is_written_and_the_files_are_deterministic(scripted, built, tmp_path):
    out, summary = built
    assert json.loads((out / SUMMARY_FILE).read_text()) == summary.to_dict()
    assert summary.databases == summary.campaigns == 1 and summary.problems == []
    build_datasets([scripted], tmp_path)
    for name in (SFT_FILE, STATES_FILE):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_a_campaign_whose_config_no_longer_loads_is_left_out_with_the_reason(finished, scripted, tmp_path):
    broken = copy_db(finished[0], tmp_path / "broken.db")
    conn = sqlite3.connect(broken)
    conn.execute("UPDATE campaigns SET config = json_set(config, '$.evaluation.suite', 'no-such-suite')")
    conn.commit()
    conn.close()
    summary = build_datasets([broken, scripted, scripted], tmp_path / "out")
    assert summary.skipped["campaign_unusable"] == 1 and summary.skipped["duplicate_database"] == 1
    assert summary.campaigns == 1 and summary.sft_rows > 0
    assert any("broken.db" in p and "no-such-suite" in p for p in summary.problems)


def test_operator_edits_are_valid_edits_of_each_states_parent_and_deterministic(scripted, built, tmp_path):
    out, _ = built
    summary = build_datasets([scripted], tmp_path / "a", operator_edits=4)
    rows = read_jsonl(tmp_path / "a" / WARMUP_FILE)
    states = {(s["meta"]["program_id"]): s for s in read_jsonl(out / STATES_FILE)}
    assert summary.warmup_rows == len(rows) and summary.operator_edits == 4
    # Up to 4 per state, and most states have sites for 4 distinct edits.
    per_state = Counter(r["meta"]["program_id"] for r in rows)
    assert set(per_state) == set(states) and max(per_state.values()) == 4 and len(rows) >= 3 * len(states)
    for row in rows:
        state = states[row["meta"]["program_id"]]
        assert row["prompt"] == state["prompt"] and row["meta"]["operator"].startswith("ast.")
        child, _ = apply_response(state["parent_source"], row["completion"][0]["content"], state["kind"])
        assert child != state["parent_source"]
    assert len({(r["meta"]["program_id"], r["completion"][0]["content"]) for r in rows}) == len(rows)
    build_datasets([scripted], tmp_path / "b", operator_edits=4)
    assert (tmp_path / "b" / WARMUP_FILE).read_bytes() == (tmp_path / "a" / WARMUP_FILE).read_bytes()
    # Without operator edits the folder holds no stale warm-up file from an earlier run.
    build_datasets([scripted], tmp_path / "a")
    assert not (tmp_path / "a" / WARMUP_FILE).exists()


def test_library_bad_input(scripted, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.db"):
        build_datasets([scripted, tmp_path / "nope.db"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="max_per_parent"):
        build_datasets([scripted], tmp_path / "out", max_per_parent=0)
    with pytest.raises(ValueError, match="operator_edits"):
        build_datasets([scripted], tmp_path / "out", operator_edits=-1)


def test_cli_writes_the_files_and_prints_the_summary(finished, scripted, tmp_path):
    out = tmp_path / "data"
    result = cli_in_process("agent", "dataset", str(finished[0]), str(scripted), "-o", str(out), "--json",
                            "--max-per-parent", "2", "--min-gain", "0.01")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["databases"] == 2 and data["max_per_parent"] == 2 and data["min_gain"] == 0.01
    assert data["sft_rows"] == len(read_jsonl(out / SFT_FILE)) > 0
    assert data["states"] == len(read_jsonl(out / STATES_FILE)) > 0
    table = cli_in_process("agent", "dataset", str(scripted), "-o", str(out))
    assert table.returncode == 0, table.stderr
    assert "sft.jsonl" in table.stdout and "states.jsonl" in table.stdout and "skipped:" in table.stdout


@pytest.mark.parametrize("args", [
    ["missing.db", "-o", "OUT"],
    ["SCRIPTED", "missing.db", "-o", "OUT"],
    ["NOT_AN_ARCHIVE", "-o", "OUT"],
    ["SCRIPTED", "-o", "OUT", "--max-per-parent", "0"],
    ["SCRIPTED", "-o", "OUT", "--min-gain", "nan"],
    ["SCRIPTED", "-o", "OUT", "--csv"],
    ["SCRIPTED"],
    ["-o", "OUT"],
])
def test_cli_bad_input_is_one_error_and_exit_2(scripted, tmp_path, args):
    not_an_archive = tmp_path / "notes.db"
    not_an_archive.write_text("not a database\n")
    names = {"SCRIPTED": str(scripted), "NOT_AN_ARCHIVE": str(not_an_archive), "OUT": str(tmp_path / "out"),
             "missing.db": str(tmp_path / "missing.db")}
    result = cli_in_process("agent", "dataset", *(names.get(a, a) for a in args))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert not (tmp_path / "out" / SFT_FILE).exists()


def test_agent_group_help():
    result = cli_in_process("--help")
    assert "Train a proposer LLM on archives: datasets, reward, SFT/GRPO, serving." in " ".join(result.stdout.split())
    assert cli_in_process("agent", "dataset", "--help").returncode == 0
