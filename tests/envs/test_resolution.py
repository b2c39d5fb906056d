"""A suite's resolution: the ± of one evaluation of PPO-clip, and the difference two evaluations separate."""

import json
import math
from dataclasses import replace

import pytest
from click.testing import CliRunner

from evosearch.cli import main
from evosearch.envs.resolution import resolution
from evosearch.envs.suites import load_suite


@pytest.mark.parametrize("name", ["quick", "classic-quick", "classic", "minatar-quick"])
def test_every_shipped_rule_suite_knows_its_resolution(name):
    found = resolution(load_suite(name), reps=500)
    assert found is not None and found.reference.endswith("ppo_clip.py")
    assert found.ci[0] < found.score < found.ci[1]
    assert found.resolves == pytest.approx(math.sqrt(2) * found.half_width)
    assert set(found.per_task_sd) == {t.env_id for t in load_suite(name).tasks}


def test_more_seeds_resolve_finer_as_one_over_the_square_root():
    quick = load_suite("quick")
    base = resolution(quick, reps=500)
    four_times = resolution(replace(quick, seeds=4 * quick.seeds), reps=500)
    assert four_times.calibration_seeds == base.calibration_seeds == quick.seeds
    assert four_times.half_width == pytest.approx(base.half_width / 2)
    assert f"scaled from the {quick.seeds} calibration seeds" in four_times.describe()


def test_a_suite_calibrated_inline_has_no_known_resolution(tmp_path):
    from conftest import TINY_SUITE

    assert resolution(load_suite(TINY_SUITE)) is None


def test_suite_show_reports_it():
    runner = CliRunner()
    table = runner.invoke(main, ["suite", "show", "quick"])
    assert table.exit_code == 0 and "resolution: programs/rules/ppo_clip.py scores" in table.output
    assert "two evaluations separate differences of" in table.output
    data = json.loads(runner.invoke(main, ["suite", "show", "quick", "--json"]).output)
    assert data["resolution"]["seeds"] == load_suite("quick").seeds and data["resolution"]["half_width"] > 0


@pytest.mark.parametrize("name", ["quick", "classic-quick", "classic", "policies", "minatar-quick"])
def test_the_resolution_written_in_each_shipped_calibration_is_the_one_its_data_give(name):
    from evosearch.envs.suites import calibration_path

    written = json.loads(calibration_path(name).read_text())["resolution"]
    found = resolution(load_suite(name))
    assert written["seeds"] == found.seeds and written["half_width"] == pytest.approx(found.half_width, abs=1e-4)
    assert written["ci"] == pytest.approx(list(found.ci), abs=1e-4)
