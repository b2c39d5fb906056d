"""Campaigns through a real local Ray cluster (2 CPUs): the tiny suite, a killed worker, same scores, doctor.

One cluster and one Ray executor (two warm actors) serve the whole module: starting them is
most of the cost, and campaigns that pass an evaluator in leave it running for the next.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from conftest import RULES, campaign_config, cli_in_process
from ray_helpers import assert_nothing_lost_or_twice, done_rows, events, open_files

ray = pytest.importorskip("ray")

from evosearch.campaign import Campaign  # noqa: E402
from evosearch.executor.local import local_evaluator  # noqa: E402
from evosearch.executor.ray_pool import RayEvaluator  # noqa: E402
from evosearch.program import Program  # noqa: E402


def ray_config(name: str = "r", **overrides):
    return campaign_config(name, executor={"kind": "ray", "cpus_per_evaluation": 1, "start_timeout_s": 120},
                           **overrides)


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def executor(cluster):
    evaluator = RayEvaluator.for_campaign(ray_config())
    yield evaluator
    evaluator.close()


@pytest.fixture(scope="module")
def ray_campaign(executor, tmp_path_factory):
    """A short campaign through Ray on the tiny suite: (database, summary, config)."""
    db = tmp_path_factory.mktemp("ray") / "r.db"
    config = ray_config(budget={"max_evals": 3})
    campaign = Campaign(config, db_path=db, evaluator=executor)
    summary = campaign.run()
    campaign.close()
    return db, summary, config


def test_a_campaign_runs_through_ray_to_its_budget(ray_campaign, executor):
    db, summary, _ = ray_campaign
    assert summary.stop_reason == "evaluation budget reached" and summary.evaluations == 3
    assert_nothing_lost_or_twice(db, 3)
    assert {r["outcome"] for r in done_rows(db)} == {"ok"}
    assert executor.slots == 2 and len(set(executor.pids())) == 2
    started = events(db, "start")[0]
    assert started["executor"]["kind"] == "ray" and started["executor"]["slots"] == 2
    assert "bubblewrap" in started["sandbox"] or "namespaces" in started["sandbox"] or "rlimits" in started["sandbox"]


def test_the_workers_never_see_the_database(ray_campaign, executor):
    """One writer: actors are given no database path and hold no file of the campaign open."""
    db, _, _ = ray_campaign
    assert str(db) not in repr(executor._init_args) and db.name not in repr(executor._init_args)
    for pid in executor.pids():
        assert not [f for f in open_files(pid) if f.startswith(str(db.parent))], pid


def test_an_evaluation_scores_the_same_through_ray_as_locally(ray_campaign):
    db, _, config = ray_campaign
    seed = next(r for r in done_rows(db) if r["note"] == "seed a2c.py")
    local = local_evaluator(config).evaluate(Program((RULES / "a2c.py").read_text(), kind="rule", name="a2c.py"))
    assert local.ok and seed["outcome"] == "ok"
    assert seed["score"] == local.score  # exactly: same seeds, same jobs, same trusted scorer
    conn_returns = {(r["task"], r["seed"]): r["mean_return"] for r in _evaluations(db, seed["id"])}
    assert conn_returns == {(task, seed_index): ret for task, t in local.tasks.items()
                            for seed_index, ret in enumerate(t.returns)}


def _evaluations(db, program_id):
    import sqlite3

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM evaluations WHERE program_id = ?", (program_id,)).fetchall()
    conn.close()
    return rows


def test_status_shows_the_executor_and_its_nodes(ray_campaign):
    db, _, _ = ray_campaign
    listed = json.loads(cli_in_process("status", "--db", str(db), "--json").stdout)[0]
    executor = listed["executor"]
    assert executor["kind"] == "ray" and executor["slots"] == 2 and executor["cluster"]["cpus"] == 2
    assert len(executor["nodes"]) == 1 and executor["nodes"][0]["slots"] == 2 and executor["in_flight"] == []
    shown = cli_in_process("status", "--db", str(db)).stdout
    assert "executor: ray at local; 2 evaluations at once" in shown
    assert f"node {executor['nodes'][0]['node']}" in shown


def test_a_killed_worker_is_replaced_and_its_evaluation_runs_again(executor, tmp_path):
    """SIGKILL the actor evaluating a program: a fresh actor runs it again; the campaign completes, nothing lost."""
    db = tmp_path / "k.db"
    campaign = Campaign(ray_config("killed", budget={"max_evals": 3}), db_path=db, evaluator=executor)
    killed: dict = {}

    def kill_the_first_evaluation():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            snapshot = executor.describe()
            if snapshot["in_flight"]:
                time.sleep(1.0)  # well into the evaluation: its warm sandbox workers are running jobs
                victim = executor.describe()["in_flight"][0]
                killed.update(victim, snapshot=executor.describe())
                os.kill(victim["pid"], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_evaluation)
    killer.start()
    summary = campaign.run()
    killer.join()
    campaign.close()
    assert killed, "no evaluation was seen in flight"
    assert summary.evaluations == 3 and not summary.paused
    assert_nothing_lost_or_twice(db, 3)
    requeues = events(db, "requeue")
    assert [(e["program"], e["pid"], e["attempt"], e["retry"]) for e in requeues] == [
        (killed["program"], killed["pid"], 1, True)]
    program_id = int(killed["program"].removeprefix("program_").removesuffix(".py"))
    row = next(r for r in done_rows(db) if r["id"] == program_id)
    assert row["outcome"] == "ok", row["error"]  # evaluated again in full, recorded once
    assert json.loads(_state(db))["requeued"] == 1
    assert killed["pid"] not in executor.pids()  # the slot has a fresh actor
    # While it ran, status would have shown that evaluation in flight on its node.
    from evosearch.cli.campaign import _executor, _executor_lines

    shown = _executor_lines(_executor({"executor": {"kind": "ray"}}, {"executor": killed["snapshot"]}, "running"))
    assert f"in flight: {killed['program']} on {killed['node']} (attempt 1" in shown


def _state(db) -> str:
    import sqlite3

    conn = sqlite3.connect(db)
    state = conn.execute("SELECT state FROM campaigns").fetchone()[0]
    conn.close()
    return state


def test_doctor_runs_on_every_node_of_the_cluster(cluster):
    proc = cli_in_process("doctor", "--ray-address", "auto", "--no-live", "--json")
    assert proc.returncode == 0, proc.stderr
    reports = json.loads(proc.stdout)
    assert len(reports) == 1 and reports[0]["node"] and reports[0]["mode"] in ("bubblewrap", "namespaces", "rlimits")
    assert {layer["name"] for layer in reports[0]["layers"]} >= {"seccomp", "bubblewrap", "rlimits"}
