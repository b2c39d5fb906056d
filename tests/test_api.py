"""The Python API as the README shows it: its example runs, and the API keeps the CLI's checks."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT, RULES, TINY_SUITE


def readme_example() -> str:
    """The one ``python`` code block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section shows one example"
    return blocks[0]


def test_the_readme_example_runs(tmp_path, monkeypatch):
    # From a directory that looks like the repository root (the paths the example names), so
    # the archive it writes lands in tmp_path, not in the checkout.
    for name in ("programs", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    proc = subprocess.run([sys.executable, "-c", readme_example()], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ok ")  # outcome, score, CI of the evaluated rule
    assert lines[1].startswith("CartPole-v1 ")
    evaluations, best, stop_reason = lines[2].split(" ", 2)
    assert int(evaluations) >= 4 and float(best) > -1 and stop_reason
    assert len(lines) > 3 and all(re.match(r"\d+ \S+ -?\d", line) for line in lines[3:])  # the ok programs
    assert (tmp_path / "archive" / "api-demo.db").is_file()


def test_the_package_import_stays_light():
    # A sandbox job imports evosearch: the API's names must not pull torch, scipy or the evaluators in.
    code = ("import sys, evosearch; heavy = [m for m in ('torch', 'scipy', 'evosearch.api', 'evosearch.campaign') "
            "if m in sys.modules]; print(heavy); evosearch.run_campaign; print('evosearch.api' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.split("\n")[:2] == ["[]", "True"], proc.stderr


def test_a_bad_config_reports_its_mistakes_as_a_file_would(tmp_path):
    from evosearch import BudgetConfig, CampaignConfig, ConfigError, run_campaign

    config = CampaignConfig(name="bad", seeds=(str(tmp_path / "missing.py"),), budget=BudgetConfig(max_evals=0))
    with pytest.raises(ConfigError) as err:
        run_campaign(config, db=tmp_path / "bad.db")
    assert "missing.py" in str(err.value) and "max_evals" in str(err.value)
    assert not (tmp_path / "bad.db").exists()


def test_evaluate_file_refuses_a_suite_of_another_kind():
    from evosearch import evaluate_file

    with pytest.raises(ValueError, match="is a rule program but suite 'policy-tiny' scores policy programs"):
        evaluate_file(RULES / "a2c.py", suite=ROOT / "tests" / "data" / "policy_tiny.yaml")


def test_open_archive_refuses_a_missing_file_and_creates_nothing(tmp_path):
    from evosearch import open_archive

    with pytest.raises(FileNotFoundError, match="no archive database"):
        open_archive(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_a_failing_program_is_a_result_not_an_exception(tmp_path):
    from evosearch import evaluate_file

    bad = tmp_path / "bad_rule.py"
    bad.write_text("import socket\ndef loss(b):\n    return b.logp.mean()\n")
    result = evaluate_file(bad, suite=TINY_SUITE)
    assert (result.outcome, result.stage, result.score) == ("rejected", "static", None)


def test_run_campaign_takes_a_mapping_reports_progress_and_resumes(tmp_path):
    from evosearch import BudgetReached, open_archive, run_campaign

    raw = {"name": "api-map", "seeds": [str(RULES / "a2c.py")], "parallel": 1,
           "evaluation": {"suite": TINY_SUITE, "hurdle": False}, "budget": {"max_evals": 1}}
    snapshots = []
    summary = run_campaign(raw, db=tmp_path / "map.db", on_progress=snapshots.append)
    assert (summary.evaluations, summary.stop_reason) == (1, "evaluation budget reached")
    assert snapshots and snapshots[-1].evaluations == 1
    with pytest.raises(BudgetReached):  # the same campaign again: resumed, and its budget is spent
        run_campaign(raw, db=tmp_path / "map.db")
    archive = open_archive(tmp_path / "map.db")
    try:
        assert [row["operator"] for row in archive.list_programs(summary.campaign_id)] == ["seed"]
    finally:
        archive.close()


def test_run_campaign_reads_a_config_file_and_names_its_mistakes(tmp_path):
    from evosearch import ConfigError, run_campaign

    config = tmp_path / "c.yaml"
    config.write_text("name: c\nseeds: [a2c.py]\nbudgt: {max_evals: 1}\n")
    with pytest.raises(ConfigError, match="budgt"):
        run_campaign(config)
    with pytest.raises(ConfigError, match="no such config file"):
        run_campaign(tmp_path / "missing.yaml")
