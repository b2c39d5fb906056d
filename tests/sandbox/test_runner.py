"""The host's side of the worker protocol."""

import json
import time

from conftest import rule_source

from evosearch.sandbox.runner import Limits, Worker


def test_two_replies_arriving_in_one_read_are_both_seen(tmp_path):
    # A fast job's "started" and "finished" lines often reach the pipe together (the host
    # thread was busy); the second must be read from our buffer, not waited for.
    worker = Worker()
    try:
        request = {"id": 1, "job": "probe", "payload": {"source": rule_source("a2c")}, "scratch": str(tmp_path),
                   "limits": Limits(wall_s=30).for_worker()}
        worker.process.stdin.write((json.dumps(request) + "\n").encode())
        worker.process.stdin.flush()
        time.sleep(3.0)  # the job has finished; both lines wait in the pipe
        started = time.monotonic()
        assert worker._read(5.0)["id"] == 1
        finished = worker._read(5.0)
        assert finished is not None and finished["id"] == 1 and "status" in finished
        assert time.monotonic() - started < 1.0
    finally:
        worker.close()
