"""An archive describes itself: comments in sqlite_master, Datasette metadata that cannot drift, per-task rows."""

import asyncio
import json
import sqlite3

import pytest

from evosearch.archive import datasette as meta
from evosearch.archive.schema import MIGRATIONS, _statements, migrate
from evosearch.archive.store import Archive
from evosearch.evaluate import OUTCOMES, EvalResult, TaskResult
from evosearch.propose.registry import OPERATOR_NAMES


def task(env_id: str, returns: list[float], normalized: list[float], ci: list[float]) -> TaskResult:
    n = len(returns)
    return TaskResult(env_id=env_id, returns=returns, normalized=normalized, mean_return=sum(returns) / n,
                      normalized_mean=sum(normalized) / n, ci=ci, curve_steps=[512], curves=[[1.0]] * n,
                      auc_per_seed=[0.1 * (i + 1) for i in range(n)], auc=0.1, train_wall_s=2.5)


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "quickstart.db")
    yield a
    a.close()


def objects(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Every table and view with its columns, as the database itself reports them."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
    return {n: [c[1] for c in conn.execute(f"PRAGMA table_info({n})")] for n in names}


def test_a_new_archive_keeps_the_schema_comments_in_sqlite_master(archive):
    sql = dict(archive.conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())
    assert "-- sha256 of source: the same text is never evaluated twice" in sql["programs"]
    assert "-- JSON: RNG state, counters, bandit; all a resume needs" in sql["campaigns"]  # a ';' in a comment
    assert "-- USD, from the configured prices" in sql["llm_calls"]
    assert "-- JSON list: each seed's return, by seed" in sql["task_results"]


def test_statements_split_only_where_sqlite_ends_a_statement():
    script = "CREATE TABLE a (x TEXT DEFAULT ';' -- one; two\n);\nCREATE VIEW b AS SELECT 1; -- trailing\n"
    assert _statements(script) == ["CREATE TABLE a (x TEXT DEFAULT ';' -- one; two\n);", "CREATE VIEW b AS SELECT 1;"]
    with pytest.raises(ValueError, match="without ';'"):
        _statements("CREATE TABLE c (x)")
    assert all(_statements(m) for m in MIGRATIONS)


def test_an_archive_from_the_previous_schema_gains_the_view_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=len(MIGRATIONS) - 1)
    conn.execute("INSERT INTO campaigns (name, kind, config, created, updated) VALUES ('old', 'rule', '{}', 't', 't')")
    conn.close()
    archive = Archive(path, readonly=True)  # browsing brings an older archive up to date, then reads only
    assert [r["name"] for r in archive.campaigns()] == ["old"]
    assert archive.task_results(1) == []
    archive.close()


def test_the_metadata_describes_every_table_and_column_of_the_schema_and_nothing_else(archive):
    described = {t: sorted(d["columns"]) for t, d in meta.descriptions()["tables"].items()}
    assert described == {t: sorted(cols) for t, cols in objects(archive.conn).items()}
    for table in meta.descriptions()["tables"].values():
        assert table["description"] and all(table["columns"].values())


def test_the_vocabularies_are_the_codes_own_values():
    assert set(meta.vocabulary("outcome")) == set(OUTCOMES)
    assert set(meta.vocabulary("operator")) == {"seed", "llm", *OPERATOR_NAMES}


def test_datasette_metadata_places_descriptions_and_values_under_each_database(tmp_path):
    data = meta.metadata([tmp_path / "quickstart.db", "archive/other.db"])
    assert set(data["databases"]) == {"quickstart", "other"}
    outcome = data["databases"]["quickstart"]["tables"]["programs"]["columns"]["outcome"]
    assert outcome.startswith("How its evaluation ended.") and "candidate_error: the program raised" in outcome
    assert json.loads(json.dumps(data)) == data


def test_the_metadata_command_prints_json_for_the_named_archives(capsys):
    assert meta.main(["archive/quickstart.db"]) == 0
    assert "quickstart" in json.loads(capsys.readouterr().out)["databases"]
    assert meta.main([]) == 2


def test_task_results_has_one_row_per_program_and_task_with_its_seeds(archive):
    campaign = archive.create_campaign("c", "rule", {}, {})
    pid = archive.add_pending(campaign, {"kind": "rule", "source": "s", "sha": "s", "operator": "ast.clamp"})
    result = EvalResult(outcome="ok", stage="full", score=0.6, ci=[0.5, 0.7], fingerprint="f",
                        tasks={"CartPole-v1": task("CartPole-v1", [100.0, 300.0, 200.0], [0.2, 0.6, 0.4], [0.25, 0.55]),
                               "Acrobot-v1": task("Acrobot-v1", [-500.0, -100.0], [0.0, 0.8], [0.0, 0.8])},
                        held_out={"MountainCar-v0": task("MountainCar-v0", [-200.0], [0.0], [0.0, 0.0])})
    archive.record(campaign, pid, result, descriptors={}, cells=[], state={})
    other = archive.create_campaign("d", "rule", {}, {})  # another campaign's rows stay out
    rows = [dict(r) for r in archive.task_results(campaign)]
    assert [(r["task"], r["held_out"], r["seeds"]) for r in rows] == [
        ("Acrobot-v1", 0, 2), ("CartPole-v1", 0, 3), ("MountainCar-v0", 1, 1)]
    cartpole = rows[1]
    assert cartpole["program_id"] == pid and cartpole["operator"] == "ast.clamp" and cartpole["outcome"] == "ok"
    assert cartpole["normalized"] == pytest.approx(0.4) and cartpole["mean_return"] == pytest.approx(200.0)
    assert (cartpole["ci_low"], cartpole["ci_high"]) == (0.25, 0.55)
    assert json.loads(cartpole["returns"]) == [100.0, 300.0, 200.0]  # by seed, not by value
    assert json.loads(cartpole["normalized_by_seed"]) == [0.2, 0.6, 0.4]
    assert cartpole["auc"] == pytest.approx(0.2) and cartpole["train_wall_s"] == 2.5
    assert (rows[2]["ci_low"], rows[2]["ci_high"]) == (0.0, 0.0)  # held-out CIs come from metrics.held_out
    assert archive.task_results(campaign, program_id=pid + 1) == [] and archive.task_results(other) == []


def test_datasette_shows_the_column_descriptions(archive):
    datasette_app = pytest.importorskip("datasette.app")
    archive.create_campaign("c", "rule", {}, {})
    ds = datasette_app.Datasette([str(archive.path)], metadata=meta.metadata([archive.path]))

    async def page(path: str) -> str:
        response = await ds.client.get(path)
        assert response.status_code == 200, path
        return response.text

    programs = asyncio.run(page("/quickstart/programs"))
    sha = "<dt>sha</dt><dd>sha256 of the source: the same text is never evaluated twice in a campaign.</dd>"
    assert sha in programs
    assert "One row per program: its source" in programs
    assert "Mean normalised score over the seeds" in asyncio.run(page("/quickstart/task_results"))
