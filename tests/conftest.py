"""Shared fixtures: program sources, the tiny suite, and a check that jobs leave nothing behind."""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "programs" / "rules"
TINY_SUITE = str(ROOT / "tests" / "data" / "tiny.yaml")
BASELINES = ("reinforce", "a2c", "ppo_clip", "dpo")

os.environ.setdefault("OMP_NUM_THREADS", "1")
# Each test session gets its own scratch root, so the leftover check sees only its own jobs.
os.environ["EVOSEARCH_SCRATCH"] = tempfile.mkdtemp(prefix="evosearch-tests-")


def rule_source(name: str) -> str:
    return (RULES / f"{name}.py").read_text()


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process we can read."""
    parents = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.split("/")[2])] = int(fields[1])
    return parents


def job_processes() -> list[int]:
    """Processes started by our sandbox workers (jobs, or anything a job left behind)."""
    parents = _parents()
    workers = {pid for pid, ppid in parents.items() if ppid == os.getpid()}
    return [pid for pid, ppid in parents.items() if ppid in workers]


@pytest.fixture
def no_leftovers():
    """Assert a test leaves no scratch directory and no job process behind."""
    pattern = os.path.join(os.environ["EVOSEARCH_SCRATCH"], "evosearch-*")
    before = set(glob.glob(pattern))
    yield
    after = set(glob.glob(pattern))
    assert after <= before, f"scratch directories left behind: {sorted(after - before)}"
    assert job_processes() == [], "job processes left running"


def campaign_config(name: str = "t", **overrides):
    """A campaign on the tiny suite: seconds per evaluation, both seeds, two islands."""
    from evosearch.config import config_from_dict

    raw = {
        "name": name,
        "seeds": [str(RULES / "reinforce.py"), str(RULES / "a2c.py")],
        "parallel": 2,
        "evaluation": {"suite": TINY_SUITE, "hurdle": False, "smoke_timeout_s": 30, "task_timeout_s": 60},
        "budget": {"max_evals": 6},
        "archive": {"islands": 2, "migration_interval": 3, "migration_count": 1},
        **overrides,
    }
    return config_from_dict(raw)


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """One finished campaign, shared by the tests that only read it."""
    from evosearch.campaign import Campaign

    db = tmp_path_factory.mktemp("campaign") / "t.db"
    campaign = Campaign(campaign_config(), db_path=db)
    summary = campaign.run()
    campaign.close()
    return db, summary


@pytest.fixture(scope="session")
def hostile(finished, tmp_path_factory):
    """(database, id of the hostile program): a copy of the finished campaign plus one program whose
    source, note and error hold ``</script><script>alert(1)</script>``; a report must show it as text."""
    from report_helpers import add_hostile_program, copy_db

    db = copy_db(finished[0], tmp_path_factory.mktemp("report") / "hostile.db")
    return db, add_hostile_program(db)
