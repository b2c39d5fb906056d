"""`evosearch plot`: the figure files it writes from a finished archive, and the numbers behind them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import cli_in_process

from evosearch import plot, stats
from evosearch.archive.store import Archive

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_every_figure_as_png(finished, tmp_path):
    db, _ = finished
    proc = cli_in_process("plot", str(db), "-o", str(tmp_path / "figs"))
    assert proc.returncode == 0, proc.stderr
    written = sorted(tmp_path.joinpath("figs").iterdir())
    assert [p.name for p in written] == sorted(f"{name}.png" for name in plot.FIGURES)
    assert proc.stdout.split() == [str(tmp_path / "figs" / f"{name}.png") for name in plot.FIGURES]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path


def test_plot_writes_svg_without_a_date(finished, tmp_path):
    db, _ = finished
    proc = cli_in_process("plot", "--db", str(db), "-o", str(tmp_path), "--format", "svg")
    assert proc.returncode == 0, proc.stderr
    for name in plot.FIGURES:
        text = (tmp_path / f"{name}.svg").read_text()
        assert ET.fromstring(text).tag == "{http://www.w3.org/2000/svg}svg"
        assert "<dc:date>" not in text  # regenerated figures diff only where the data changed


def test_plot_defaults_beside_the_database(finished, tmp_path):
    db = tmp_path / "copy.db"
    db.write_bytes(finished[0].read_bytes())
    assert cli_in_process("plot", str(db)).returncode == 0
    assert {p.name for p in (tmp_path / "copy-figures").iterdir()} == {f"{n}.png" for n in plot.FIGURES}


@pytest.mark.parametrize("programs, message", [("9999", "no program 9999"), ("1,x", "program ids separated")])
def test_bad_programs_are_one_error_line(finished, tmp_path, programs, message):
    proc = cli_in_process("plot", str(finished[0]), "-o", str(tmp_path / "f"), "--programs", programs)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "f").exists()


@pytest.fixture
def archive(finished):
    """The finished campaign's archive, open for one test and closed after it."""
    archive = Archive(finished[0])
    yield archive
    archive.close()


def test_the_best_and_the_seeds_are_chosen_by_default(finished, archive):
    _, summary = finished
    chosen = plot.choose_programs(archive, summary.campaign_id)
    seeds = [int(r["id"]) for r in archive.programs_of(summary.campaign_id) if r["operator"] == "seed"]
    assert [c.id for c in chosen] == [summary.best_program, *[s for s in seeds if s != summary.best_program]]
    assert all(c.seed == (c.id in seeds) for c in chosen)
    named = plot.choose_programs(archive, summary.campaign_id, [seeds[-1]])
    assert [c.id for c in named] == [seeds[-1], *seeds[:-1]]


def test_curves_keep_every_seed(finished, archive):
    _, summary = finished
    curves = plot.learning_curves(archive, summary.campaign_id, [summary.best_program])
    rows = [r for r in archive.evaluations(summary.best_program) if r["curve"]]
    got = {(tc.task, tc.held_out): len(tc.seeds) for tc in curves[summary.best_program]}
    want: dict = {}
    for r in rows:
        want[(r["task"], bool(r["held_out"]))] = want.get((r["task"], bool(r["held_out"])), 0) + 1
    assert got == want and sum(want.values()) > 1


def test_aggregate_is_the_iqm_and_ci_of_the_seed_scores(finished, archive):
    _, summary = finished
    chosen = plot.choose_programs(archive, summary.campaign_id)
    rows = plot.aggregate(archive, chosen)
    best = rows[0]
    scores = plot.seed_scores(archive, summary.best_program)
    training = [r for r in archive.evaluations(summary.best_program) if not r["held_out"]]
    assert scores.size == len(training)
    assert best["iqm"] == pytest.approx(stats.iqm(scores))
    assert best["ci"] == pytest.approx(stats.stratified_bootstrap_ci(scores))
    assert best["ci"][0] <= best["iqm"] <= best["ci"][1]
    assert np.isfinite([r["iqm"] for r in rows]).all()
