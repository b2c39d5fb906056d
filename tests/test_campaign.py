"""The campaign loop on the tiny suite: budgets, counters, dedup, resume, kill -9."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RULES, TINY_SUITE, FailsAtOnce, broken_machine_evaluator
from conftest import campaign_config as config

from evosearch.campaign import BudgetReached, Campaign
from evosearch.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def done_rows(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM programs WHERE status = 'done' ORDER BY eval_seq").fetchall()
    conn.close()
    return rows


def evaluated_so_far(db: Path) -> int:
    """Completed evaluations of a campaign running in another process (0 while its database is being created)."""
    try:
        return len(done_rows(db)) if db.exists() else 0
    except sqlite3.OperationalError:  # the file exists, its tables not yet
        return 0


def assert_consistent(db: Path, expected_evaluations: int) -> None:
    """Counters agree with the rows; nothing is pending or recorded twice; the file is sound."""
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    state = json.loads(conn.execute("SELECT state FROM campaigns").fetchone()[0])
    evaluated = conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'done' AND outcome != 'duplicate'")
    duplicates = conn.execute("SELECT COUNT(*) FROM programs WHERE outcome = 'duplicate'").fetchone()[0]
    assert state["evaluations"] == evaluated.fetchone()[0] == expected_evaluations
    assert state["duplicates"] == duplicates
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'pending'").fetchone()[0] == 0
    seqs = [r[0] for r in conn.execute("SELECT eval_seq FROM programs WHERE status = 'done' ORDER BY eval_seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    per_seed = conn.execute("SELECT COUNT(*), COUNT(DISTINCT program_id || task || seed) FROM evaluations").fetchone()
    assert per_seed[0] == per_seed[1]
    conn.close()


def test_a_campaign_runs_to_its_budget_and_fills_the_grid(finished):
    db, summary = finished
    assert summary.stop_reason == "evaluation budget reached" and summary.evaluations == 6
    assert_consistent(db, 6)
    rows = done_rows(db)
    assert [r["operator"] for r in rows[:2]] == ["seed", "seed"]
    assert all(r["operator"] != "seed" for r in rows[2:])
    children = [r for r in rows if r["operator"] != "seed"]
    assert all(r["parent_id"] is not None or r["operator"] == "gp.new" for r in children)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0] >= 2  # the seeds enter every island
    kinds = [r[0] for r in conn.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds[0] == "start" and kinds[-1] == "stop" and "migration" in kinds
    assert conn.execute("SELECT status FROM campaigns").fetchone()[0] == "finished"


def test_a_finished_campaign_says_so_instead_of_running(finished):
    db, _ = finished
    with pytest.raises(BudgetReached, match="raise --max-evals"):
        Campaign(config(), db_path=db).run()


def test_resume_continues_the_same_search_as_an_uninterrupted_run(tmp_path):
    # One evaluation at a time, so the search is a deterministic function of its state: a
    # campaign stopped after 3 evaluations and resumed must propose exactly what one that
    # never stopped proposes (the seeds, one proposal before the stop, two after it).
    straight = Campaign(config(parallel=1), db_path=tmp_path / "straight.db")
    straight.run(max_evals=5)
    straight.close()
    first = Campaign(config(parallel=1), db_path=tmp_path / "resumed.db")
    first.run(max_evals=3)
    first.close()
    again = Campaign(config(parallel=1), db_path=tmp_path / "resumed.db")
    again.run(max_evals=5)
    again.close()
    assert_consistent(tmp_path / "resumed.db", 5)
    assert [r["sha"] for r in done_rows(tmp_path / "resumed.db")] == [r["sha"] for r in done_rows(tmp_path /
                                                                                                  "straight.db")]


def test_a_program_that_behaves_like_an_evaluated_one_is_not_retrained(tmp_path):
    twin = tmp_path / "a2c_twin.py"  # same behaviour, different text
    twin.write_text((RULES / "a2c.py").read_text().replace("pg_loss", "policy_loss"))
    cfg = config(seeds=[str(RULES / "a2c.py"), str(twin)], parallel=1)
    campaign = Campaign(cfg, db_path=tmp_path / "d.db")
    campaign.run(max_evals=2)  # the twin does not count: a third program makes the second evaluation
    campaign.close()
    rows = {r["operator"] + ":" + r["note"]: r for r in done_rows(tmp_path / "d.db")}
    original, copy = rows["seed:seed a2c.py"], rows["seed:seed a2c_twin.py"]
    assert copy["outcome"] == "duplicate" and copy["duplicate_of"] == original["id"]
    assert copy["fingerprint"] == original["fingerprint"] and copy["stage"] == "smoke"
    conn = sqlite3.connect(tmp_path / "d.db")
    assert conn.execute("SELECT COUNT(*) FROM evaluations WHERE program_id = ?", (copy["id"],)).fetchone()[0] == 0
    assert_consistent(tmp_path / "d.db", 2)


def test_the_time_budget_stops_proposing_and_finishes_what_runs(tmp_path):
    campaign = Campaign(config(budget={"max_evals": None, "minutes": 0.05}), db_path=tmp_path / "m.db")
    start = time.monotonic()
    summary = campaign.run()
    campaign.close()
    assert summary.stop_reason == "time budget reached"
    assert time.monotonic() - start < 60
    assert_consistent(tmp_path / "m.db", summary.evaluations)


def test_resuming_with_a_different_suite_is_refused(finished, tmp_path):
    db, _ = finished
    other = config(evaluation={"suite": TINY_SUITE, "hurdle": True})
    with pytest.raises(ConfigError, match="different evaluation section"):
        Campaign(other, db_path=db)


def test_kill_9_then_the_same_command_continues(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({**json.loads(json.dumps(config("killed").to_dict())), "source_path": None,
                                "budget": {"max_evals": 8, "minutes": None}}))
    db = tmp_path / "k.db"
    command = [sys.executable, "-m", "evosearch.cli", "run", str(path), "--db", str(db)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and evaluated_so_far(db) < 3:
        time.sleep(0.2)
    started = descendants(proc.pid)
    assert started, "the campaign had no sandbox workers"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Evaluations, not rows (a duplicate is a row too); the budget leaves room for a poll that came late.
    killed_at = len([r for r in done_rows(db) if r["outcome"] != "duplicate"])
    assert 3 <= killed_at < 8
    deadline = time.monotonic() + 30  # a worker notices its host is gone, kills its job and exits
    while still_running(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not still_running(started), "jobs of the killed campaign kept running"
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "evaluation budget reached" in result.stdout
    assert_consistent(db, 8)
    rows = done_rows(db)
    assert len({r["sha"] for r in rows}) == len(rows)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def descendants(pid: int) -> set[int]:
    """Every process started, directly or not, by ``pid`` (its sandbox workers and their jobs)."""
    parents = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def still_running(pids: set[int]) -> list[int]:
    """Those of ``pids`` that are alive and not zombies (only these processes: others' tests may run beside)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_ctrl_c_finishes_the_running_evaluations_and_stops_cleanly(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({**json.loads(json.dumps(config("interrupted").to_dict())), "source_path": None,
                                "budget": {"max_evals": 50, "minutes": None}}))
    db = tmp_path / "i.db"
    proc = subprocess.Popen([sys.executable, "-m", "evosearch.cli", "run", str(path), "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and evaluated_so_far(db) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: to the whole foreground process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped by Ctrl-C" in out
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM campaigns").fetchone()[0] == "stopped"
    conn.close()
    evaluated = len([r for r in done_rows(db) if r["outcome"] != "duplicate"])
    assert_consistent(db, evaluated)  # what was running finished; nothing is left pending
    assert all(r["outcome"] != "sandbox_failure" for r in done_rows(db)), "the interrupt reached the workers"
    assert evaluated < 50


class FailingEvery:
    """The real evaluator, except that every ``n``-th call fails the way broken machinery would."""

    def __init__(self, n: int, suite: str):
        from evosearch.evaluate import CascadeConfig, RuleEvaluator

        self.inner = RuleEvaluator(CascadeConfig(suite=suite, hurdle=False, smoke_timeout_s=30, task_timeout_s=60,
                                             workers=1, bootstrap_reps=200))
        self.n, self.calls = n, 0

    def evaluate(self, program, skip_if=None):
        self.calls += 1
        if self.calls % self.n == 0:
            raise RuntimeError("the sandbox worker did not start")
        return self.inner.evaluate(program, skip_if=skip_if)


def test_broken_machinery_and_a_crashing_operator_do_not_stop_the_campaign(tmp_path, caplog):
    campaign = Campaign(config(parallel=1), db_path=tmp_path / "f.db", evaluator=FailingEvery(3, TINY_SUITE))

    def crash(parents, rng):
        raise IndexError("a bug in an operator")

    campaign.operators["ast.constant"].propose = crash
    summary = campaign.run(max_evals=5)
    campaign.close()
    # A lone failure of the machine is not the program's: it goes back to the queue and is evaluated again.
    assert summary.evaluations == 5 and not summary.paused and summary.outcomes.get("sandbox_failure", 0) == 0
    assert "sandbox_failure at smoke, not the program's doing (1 in a row): RuntimeError: the sandbox worker " \
           "did not start" in caplog.text
    assert campaign.evaluator.calls > 5
    assert_consistent(tmp_path / "f.db", 5)


class MachineFailsEveryTime:
    """The real probe fingerprints each program; the rest of the evaluation fails as broken machinery would."""

    def __init__(self, suite: str):
        from evosearch.evaluate import CascadeConfig, RuleEvaluator

        self.inner = RuleEvaluator(CascadeConfig(suite=suite, hurdle=False, smoke_timeout_s=30, workers=1))

    def fingerprint(self, program):
        return self.inner.fingerprint(program)

    def evaluate(self, program, skip_if=None):
        from evosearch.evaluate import EvalResult

        fingerprint = self.inner.fingerprint(program)
        if skip_if is not None and skip_if(fingerprint):
            return EvalResult(outcome="duplicate", stage="smoke", fingerprint=fingerprint)
        return EvalResult(outcome="sandbox_failure", stage="full", fingerprint=fingerprint,
                          error="WorkerLost: the worker died during training")


def test_a_program_that_fails_the_machine_is_retried_once_then_counted_as_known(tmp_path):
    """A twin of a sandbox failure gets one more try (the machine may have failed once), not every slot."""
    spellings = []
    for i in range(3):  # three spellings of one rule: one fingerprint
        path = tmp_path / f"a2c_{i}.py"
        path.write_text((RULES / "a2c.py").read_text() + f"\n# spelling {i}\n")
        spellings.append(str(path))
    # No pause (the campaign would pause after three in a row): each spelling is tried twice, and
    # the second failure of each is recorded; after two recorded failures, the fingerprint is known.
    campaign = Campaign(config(seeds=spellings, parallel=1, budget={"max_evals": 3, "pause_after_failures": 0}),
                        db_path=tmp_path / "m.db", evaluator=MachineFailsEveryTime(TINY_SUITE))
    campaign.run(max_evals=3)
    campaign.close()
    seeds = sorted(done_rows(tmp_path / "m.db"), key=lambda r: r["id"])[:3]
    assert [r["outcome"] for r in seeds] == ["sandbox_failure", "sandbox_failure", "duplicate"]
    fingerprints = {r["fingerprint"] for r in seeds}
    assert len(fingerprints) == 1 and None not in fingerprints  # the failures record what they were


def test_a_gp_child_of_a_seed_genome_has_the_seed_program_as_its_parent(tmp_path):
    """``gp.new`` mutating the a2c genome: its parent is the campaign's seed a2c.py, so lineage reaches it."""
    campaign = Campaign(config(parallel=1, operators={"enabled": ["gp.new"], "gp_seed_genomes": ["a2c"]}),
                        db_path=tmp_path / "g.db", evaluator=FailsAtOnce())
    campaign.run(max_evals=30)
    campaign.close()
    rows = done_rows(tmp_path / "g.db")
    seed = next(r["id"] for r in rows if r["note"] == "seed a2c.py")
    children = [r for r in rows if r["note"].startswith("seed a2c mutated by")]
    assert children, [r["note"] for r in rows]
    assert all(r["parent_id"] == seed for r in children), [(r["id"], r["parent_id"]) for r in children]
    random_trees = [r for r in rows if r["note"].startswith("random tree")]
    assert all(r["parent_id"] is None for r in random_trees)


# -- a machine that fails every evaluation: pause, do not spend the budget ------------------------------


def test_a_campaign_pauses_when_evaluations_keep_failing_outside_the_programs(tmp_path):
    db = tmp_path / "broken.db"
    campaign = Campaign(config(parallel=1, budget={"max_evals": 20, "pause_after_failures": 3}), db_path=db,
                        evaluator=broken_machine_evaluator())
    summary = campaign.run()
    campaign.close()
    assert summary.paused and summary.stop_reason.startswith("paused: the last 3 evaluations failed outside")
    assert "infra_error" in summary.stop_reason and "evosearch doctor" in summary.stop_reason
    conn = sqlite3.connect(db)
    status = conn.execute("SELECT status FROM campaigns").fetchone()[0]
    outcomes = conn.execute("SELECT status, outcome, COUNT(*) FROM programs GROUP BY status, outcome").fetchall()
    pauses = conn.execute("SELECT data FROM events WHERE kind = 'pause'").fetchall()
    conn.close()
    assert status == "paused" and len(pauses) == 1
    # Nothing blamed on a program and no budget spent: the two seeds failed once each (back to the
    # queue), the first again (the third in a row): the run paused with both still pending.
    assert outcomes == [("pending", None, 2)], outcomes
    assert summary.evaluations == 0


def test_a_paused_campaign_resumes_its_pending_programs_on_a_working_machine(tmp_path):
    db = tmp_path / "broken.db"
    campaign = Campaign(config(parallel=1, budget={"max_evals": 2, "pause_after_failures": 2}), db_path=db,
                        evaluator=broken_machine_evaluator())
    assert campaign.run().paused
    campaign.close()
    campaign = Campaign(config(parallel=1, budget={"max_evals": 2, "pause_after_failures": 2}), db_path=db,
                        evaluator=FailsAtOnce())  # the machine works again (candidates fail on their own)
    summary = campaign.run()
    campaign.close()
    assert not summary.paused and summary.outcomes.get("candidate_error") == 2, summary


# -- confirmation of the best on fresh seeds ------------------------------------------------------------


def test_a_campaign_confirms_what_would_rank_among_its_best(tmp_path):
    db = tmp_path / "c.db"
    campaign = Campaign(config(parallel=1, budget={"max_evals": 3}, confirm={"top": 1, "seeds": 2}), db_path=db)
    campaign.run()
    campaign.close()
    rows = [r for r in done_rows(db) if r["outcome"] == "ok"]
    confirmed = [(r["eval_seq"], r["score"], json.loads(r["metrics"]).get("confirmed")) for r in rows]
    assert confirmed and confirmed[0][2] is not None  # the first ok result is the best so far
    best, confirmed_before = -float("inf"), []
    for seq, score, record in sorted(confirmed, key=lambda c: c[0]):
        if score > best:  # it led: confirmed
            assert record is not None, (seq, score, best)
        elif record is not None:  # otherwise only to contest a confirmed elite, which it beat on search scores
            assert any(score > earlier for earlier in confirmed_before), (seq, score, confirmed_before)
        best = max(best, score)
        if record is not None:
            confirmed_before.append(score)
        if record is not None:
            assert record["outcome"] == "ok" and record["seeds"] == 2 and record["first_seed"] == 1000
    from conftest import cli_in_process

    shown = cli_in_process("archive", "show", str(rows[0]["id"]), "--db", str(db))
    assert "confirmed on 2 fresh seeds:" in " ".join(shown.stdout.split())
    from evosearch.archive.store import Archive
    from evosearch.report.data import build_data

    archive = Archive(db)
    try:
        page = {p["id"]: p for p in build_data(archive)["programs"]}
    finally:
        archive.close()
    assert page[rows[0]["id"]]["confirmed"]["seeds"] == 2  # what the web report's program page shows
