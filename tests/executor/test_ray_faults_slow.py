"""Whole-process faults through `evosearch run --executor ray` (slow: each starts Ray in fresh processes).

- The cluster disappears mid-run (its head killed): the campaign pauses with a message (exit 3)
  and its programs stay pending; the same command on a working cluster resumes and completes.
- The driver is killed with ``kill -9``: Ray's processes go with it, and the same command
  resumes like a local campaign, nothing lost or counted twice.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import campaign_config
from ray_helpers import assert_nothing_lost_or_twice, done_rows
from test_campaign import descendants, still_running

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).parent / "ray")
#: A head without token authentication, bound to this machine only: the test's driver needs no token file.
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def config_file(tmp_path: Path, name: str, max_evals: int) -> Path:
    raw = json.loads(json.dumps(campaign_config(name).to_dict()))
    raw.update(source_path=None, budget={"max_evals": max_evals, "minutes": None},
               executor={"kind": "ray", "start_timeout_s": 20})
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(raw))
    return path


def evaluated(db: Path) -> int:
    try:
        return len([r for r in done_rows(db) if r["outcome"] != "duplicate"]) if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the Ray head did not open port {port}")


def test_a_cluster_that_disappears_pauses_the_campaign_and_the_same_command_resumes_it(tmp_path):
    port = free_port()
    head = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port)
        path, db = config_file(tmp_path, "lost", 6), tmp_path / "lost.db"
        command = [sys.executable, "-m", "evosearch.cli", "run", str(path), "--db", str(db)]
        driver = subprocess.Popen([*command, "--ray-address", f"127.0.0.1:{port}"], env=ENV, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and evaluated(db) < 1 and driver.poll() is None:
            time.sleep(0.2)
        assert evaluated(db) >= 1, driver.communicate(timeout=30)
        os.killpg(head.pid, signal.SIGKILL)  # the head and its workers: the cluster is gone
        out, err = driver.communicate(timeout=180)
    finally:
        _kill_group(head.pid)
    assert driver.returncode == 3, err  # paused, as for a broken machine
    assert "paused: the Ray cluster at 127.0.0.1:" in out and "is unreachable" in out, out
    conn = sqlite3.connect(db)
    status = conn.execute("SELECT status FROM campaigns").fetchone()[0]
    pending = conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'pending'").fetchone()[0]
    recorded = conn.execute("SELECT COUNT(*) FROM programs WHERE outcome IN ('infra_error', 'sandbox_failure')")
    recorded = recorded.fetchone()[0]
    conn.close()
    assert status == "paused" and pending >= 1  # what was in flight waits for the cluster, blamed on nobody
    assert recorded == 0
    # The cluster "is back" (here: Ray started inside the driver): the same command finishes the campaign.
    again = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "evaluation budget reached" in again.stdout
    assert_nothing_lost_or_twice(db, 6)


def test_kill_9_of_the_driver_then_the_same_command_continues(tmp_path):
    path, db = config_file(tmp_path, "killed", 6), tmp_path / "k.db"
    command = [sys.executable, "-m", "evosearch.cli", "run", str(path), "--db", str(db)]
    driver = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and evaluated(db) < 2:
        time.sleep(0.2)
    started = descendants(driver.pid)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    killed_at = evaluated(db)
    assert 2 <= killed_at < 6
    # Ray fate-shares the processes it started with the driver: its workers (and their sandbox jobs) go too.
    workers = {pid for pid in started if b"EvaluationWorker" in _cmdline(pid)}
    assert workers, "the driver had no Ray evaluation workers"
    deadline = time.monotonic() + 60
    while still_running(workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not still_running(workers), "Ray workers of the killed driver kept running"
    result = subprocess.run([*command, "--parallel", "1"], env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "executor: ray at local: 1 evaluations at once" in result.stderr  # --parallel sets the actors on Ray
    assert "evaluation budget reached" in result.stdout
    assert_nothing_lost_or_twice(db, 6)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
