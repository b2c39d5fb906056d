"""The executor's settings from the command line, and what a missing Ray says (no cluster started here)."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import campaign_config, cli_in_process

from evosearch.executor import RAY_MISSING, ExecutorError, ray_evaluator

INSTALL = "pip install 'evosearch[ray]'"


@pytest.fixture
def no_ray(monkeypatch):
    """This process as it would be without the ray package: ``import ray`` fails."""
    monkeypatch.setitem(sys.modules, "ray", None)


def config_file(tmp_path, **overrides):
    path = tmp_path / "c.yaml"
    raw = json.loads(json.dumps(campaign_config("settings", **overrides).to_dict()))
    path.write_text(json.dumps({**raw, "source_path": None}))
    return path


def test_without_ray_the_executor_says_what_to_install(no_ray):
    with pytest.raises(ExecutorError) as err:
        ray_evaluator(campaign_config(executor={"kind": "ray"}))
    assert str(err.value) == RAY_MISSING and INSTALL in RAY_MISSING


def test_run_with_the_ray_executor_but_no_ray_exits_2_with_the_install_line(no_ray, tmp_path):
    proc = cli_in_process("run", str(config_file(tmp_path)), "--executor", "ray", "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 2 and INSTALL in proc.stderr, proc.stderr
    assert not (tmp_path / "r.db").exists()  # nothing started, nothing written
    proc = cli_in_process("run", str(config_file(tmp_path, executor={"kind": "ray"})), "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 2 and INSTALL in proc.stderr, proc.stderr  # the config's executor, likewise


def test_doctor_on_a_cluster_without_ray_exits_2_with_the_install_line(no_ray):
    proc = cli_in_process("doctor", "--ray-address", "auto", "--no-live")
    assert proc.returncode == 2 and INSTALL in proc.stderr, proc.stderr


def test_a_ray_address_goes_with_the_ray_executor_only(tmp_path):
    proc = cli_in_process("run", str(config_file(tmp_path)), "--executor", "local", "--ray-address", "auto")
    assert proc.returncode == 2 and "cannot go with --executor local" in proc.stderr
    proc = cli_in_process("run", str(config_file(tmp_path)), "--ray-address", "http://head:8265")
    assert proc.returncode == 2 and "executor.address: 'http://head:8265' is not auto" in proc.stderr


def test_the_command_line_sets_the_executor_section():
    from evosearch.cli.campaign import _executor_overrides

    assert _executor_overrides(None, None) == {}
    assert _executor_overrides("ray", None) == {"executor": {"kind": "ray"}}
    assert _executor_overrides(None, "ray://head:10001") == {"executor": {"kind": "ray", "address": "ray://head:10001"}}
    assert _executor_overrides("local", None) == {"executor": {"kind": "local"}}
