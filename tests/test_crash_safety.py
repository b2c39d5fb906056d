"""Crash safety (issue 6): SIGKILL a running campaign at random moments, restart it, check the archive.

The experiment is ``scripts/crash_campaign.py`` (run it by hand for the readable log); here it
runs as a function and its report is asserted, then the final archive is checked once more with
the campaign tests' own consistency check.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import crash_script, job_processes
from test_campaign import assert_consistent

from evosearch.campaign import Campaign
from evosearch.config import load_config
from evosearch.program import Program


def crash(tmp_path: Path, kills: int, evals: int, seed: int):
    report = crash_script().run(kills=kills, evals=evals, seed=seed, workdir=tmp_path, log=print)
    print(report.summary())
    assert report.ok, report.summary()
    assert len(report.kills) >= kills
    assert report.reference_evaluations == report.final_evaluations == evals
    assert all(k.integrity in ("ok", "no database yet") for k in report.kills)
    assert_consistent(tmp_path / "crashed.db", evals)
    assert job_processes() == []
    return report


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_twenty_random_kills_lose_and_repeat_nothing(tmp_path):
    report = crash(tmp_path, kills=20, evals=24, seed=0)
    assert set(report.phases) == {"startup", "evaluating", "writing"}, report.phases
    assert sum(k.after > k.before for k in report.kills) >= 3, "too few kills came after completed evaluations"
    assert any(k.jobs for k in report.kills), "no kill landed while sandbox jobs ran"


@pytest.mark.slow  # 19 s; a kill -9 and resume stays in the default run (tests/test_campaign.py)
def test_three_kills_at_start_up_leave_a_sound_archive(tmp_path):
    # The quick version: a 2-evaluation campaign, so every kill lands before an evaluation can
    # finish (start-up, opening and creating the archive, starting the sandbox workers).
    crash(tmp_path, kills=3, evals=2, seed=9)


#: Opens a new campaign and SIGKILLs itself the moment the campaign row is committed (a random
#: kill lands there rarely; this one always does). The seed programs must be stored by then.
KILLED_AT_CREATION = """
import os, signal, sys
from evosearch.archive import store
from evosearch.campaign import Campaign
from evosearch.config import load_config
create = store.Archive.create_campaign
def create_and_die(*args, **kwargs):
    create(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
store.Archive.create_campaign = create_and_die
Campaign(load_config(sys.argv[1]), db_path=sys.argv[2])
"""


def test_a_kill_right_after_the_campaign_is_created_loses_no_seed_program(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(crash_script().campaign_yaml(4), encoding="utf-8")
    db = tmp_path / "s.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_CREATION, str(config), str(db)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    campaign = Campaign(load_config(config), db_path=db)  # what the same command does next
    try:
        stored = {r["sha"] for r in campaign.archive.pending(campaign.campaign_id)}
    finally:
        campaign.close()
    seeds = {Program(p.read_text(encoding="utf-8")).sha for p in load_config(config).seed_paths()}
    assert seeds <= stored, f"{len(seeds - stored)} of {len(seeds)} seed programs lost"
