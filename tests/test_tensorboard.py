"""TensorBoard logging of a campaign: the event files are read back, by TensorBoard when installed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import campaign_config, cli_in_process

from evosearch.archive.store import Archive
from evosearch.campaign import Progress
from evosearch.tensorboard_log import ProgressScalars, crc32c, read_scalars


def snapshot(evaluations: int, best: float | None = None, **outcomes: int) -> Progress:
    return Progress(name="t", evaluations=evaluations, max_evals=None, in_flight=1, best=best,
                    qd_score=2.0 * evaluations, coverage=evaluations / 10, cells=evaluations, evals_per_hour=120.0,
                    outcomes=outcomes, proposal_errors=0, elapsed_s=1.0, minutes=None)


def test_crc32c_is_castagnoli():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value


def test_one_point_per_evaluation(tmp_path):
    scalars = ProgressScalars(tmp_path / "tb")
    for p in (snapshot(0), snapshot(0), snapshot(1, 0.5, ok=1), snapshot(1, 0.5, ok=1),
              snapshot(2, 0.75, ok=1, timeout=1)):
        scalars(p)
    read = read_scalars(scalars.writer.path)
    assert read["search/best"] == [(1, 0.5), (2, 0.75)]  # no point before a best exists
    assert read["search/qd_score"] == [(0, 0.0), (1, 2.0), (2, 4.0)]
    assert read["search/coverage"] == [(0, 0.0), (1, pytest.approx(0.1)), (2, pytest.approx(0.2))]
    assert read["outcomes/ok"] == [(1, 1.0), (2, 1.0)] and read["outcomes/timeout"] == [(2, 1.0)]
    assert read["rate/evaluations_per_hour"] == [(0, 120.0), (1, 120.0), (2, 120.0)]


def test_a_corrupt_file_is_refused(tmp_path):
    scalars = ProgressScalars(tmp_path)
    scalars(snapshot(1, 0.5, ok=1))
    data = bytearray(scalars.writer.path.read_bytes())
    data[-6] ^= 0xFF
    scalars.writer.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad CRC"):
        read_scalars(scalars.writer.path)


def test_tensorboard_reads_the_files(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    scalars = ProgressScalars(tmp_path)
    for n in range(3):
        scalars(snapshot(n, 0.25 * n, ok=n))
    acc = accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("search/best")] == [(0, 0.0), (1, 0.25), (2, 0.5)]
    assert [(e.step, e.value) for e in acc.Scalars("outcomes/ok")] == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_run_with_tensorboard_logs_the_campaign(tmp_path):
    config = campaign_config("tb", budget={"max_evals": 3, "minutes": None})
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({**config.to_dict(), "source_path": None}))
    db, logs = tmp_path / "tb.db", tmp_path / "logs"
    proc = subprocess.run([sys.executable, "-m", "evosearch.cli", "run", str(path), "--db", str(db),
                           "--tensorboard", str(logs)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [events] = list(logs.glob("events.out.tfevents.*"))
    read = read_scalars(events)
    steps = [step for step, _ in read["search/qd_score"]]
    assert steps == sorted(set(steps)) and steps[-1] == 3
    archive = Archive(db)
    try:
        campaign = archive.campaigns()[0]
        stats = archive.qd_stats(campaign["id"], 30, 0.0)
        counts = archive.counts(campaign["id"])
    finally:
        archive.close()
    assert read["search/best"][-1] == (3, pytest.approx(stats["best"]))
    assert read["outcomes/ok"][-1] == (3, counts.get("ok", 0))


def test_an_unwritable_log_folder_is_one_error_line(tmp_path):
    (tmp_path / "file").write_text("")
    config = campaign_config("tb2")
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({**config.to_dict(), "source_path": None}))
    # In this process (the same command: exit code, stderr, and an uncaught exception's traceback in it);
    # the run above is the fresh interpreter.
    proc = cli_in_process("run", str(path), "--db", str(tmp_path / "x.db"), "--tensorboard",
                          str(tmp_path / "file" / "logs"))
    assert proc.returncode == 2
    assert "cannot write TensorBoard logs" in proc.stderr and "Traceback" not in proc.stderr
