"""Weak sandbox modes say so (issue 15): ``eval`` and ``run`` warn in ``rlimits``, and a campaign whose
LLM models use API keys refuses to start there unless given ``--allow-weak-sandbox``.

In ``rlimits`` a job runs as the user with the host's ``/proc`` in view, so it can read the keys
in evosearch's own environment (``tests/sandbox/test_hostile.py``'s read_secrets shows that the
strong modes hide them). The mode is forced with ``EVOSEARCH_SANDBOX`` in a fresh process each
time: the mode in force is process-wide, and this test process must keep its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RULES, TINY_SUITE, campaign_config

from evosearch.cli.options import weak_sandbox_warning
from evosearch.sandbox import Mode

KEY_VAR = "EVOSEARCH_TEST_LLM_KEY"
WARNING = "warning: sandbox mode rlimits is weak"


def evosearch(*args: str, mode: str | None, cwd: Path | None = None, timeout: float = 300,
              **env: str) -> subprocess.CompletedProcess:
    """The real command line in a fresh process, in sandbox ``mode`` (None: the default, auto)."""
    environ = {k: v for k, v in os.environ.items() if k != "EVOSEARCH_SANDBOX"} | env
    if mode:
        environ["EVOSEARCH_SANDBOX"] = mode
    return subprocess.run([sys.executable, "-m", "evosearch.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=environ, cwd=cwd)


# -- eval ------------------------------------------------------------------------------------------


def test_eval_warns_on_stderr_in_rlimits_mode_and_names_the_keys_it_sees(tmp_path):
    """(In a strong mode there is no such line: ``test_cli_eval.py::test_eval_json_for_a_rejected_rule``.)"""
    rejected = tmp_path / "rejected.py"  # refused by the static check: the warning comes before any job
    rejected.write_text("import socket\n\ndef loss(b):\n    return b.logp.mean()\n")
    proc = evosearch("eval", str(rejected), "--suite", TINY_SUITE, "--json", mode="rlimits", OPENAI_API_KEY="sk-x")
    assert proc.returncode == 1 and json.loads(proc.stdout)["outcome"] == "rejected"  # stdout stays the JSON
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith(WARNING) and "OPENAI_API_KEY" in warning and "sk-x" not in proc.stderr
    assert "evosearch doctor" in warning


def test_the_warning_names_only_what_looks_like_a_key():
    weak, strong = Mode(name="rlimits", seccomp=True), Mode(name="bubblewrap", seccomp=True)
    assert weak_sandbox_warning(strong, {"OPENAI_API_KEY": "x"}) is None
    text = weak_sandbox_warning(weak, {"OPENAI_API_KEY": "sk-1", "HF_TOKEN": "t", "PATH": "/bin", "EMPTY_KEY": ""})
    assert "HF_TOKEN, OPENAI_API_KEY" in text and "PATH" not in text and "EMPTY_KEY" not in text
    assert "sk-1" not in text and "(set here" not in weak_sandbox_warning(weak, {"PATH": "/bin"})


# -- run ---------------------------------------------------------------------------------------------


def write_config(tmp_path: Path, *, llm_key: bool, sandbox: str = "auto") -> Path:
    """A campaign of one seed and one evaluation; with ``llm_key`` an LLM model whose key is $KEY_VAR
    (at a port nothing listens on: the model is never needed for one evaluation of the seed)."""
    raw = json.loads(json.dumps(campaign_config("weak", seeds=[str(RULES / "a2c.py")], parallel=1,
                                                budget={"max_evals": 1}).to_dict()))
    raw.pop("source_path")
    raw["evaluation"]["sandbox"] = sandbox
    if llm_key:
        raw["llm"] = {"models": [{"name": "remote", "model": "m", "base_url": "http://127.0.0.1:9/v1",
                                  "api_key_env": KEY_VAR, "max_retries": 0, "timeout_s": 5}]}
    path = tmp_path / "weak.yaml"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("how", ["environment", "config"])
def test_an_llm_campaign_with_a_key_refuses_to_start_in_rlimits_mode(tmp_path, how):
    config = write_config(tmp_path, llm_key=True, sandbox="rlimits" if how == "config" else "auto")
    db = tmp_path / "weak.db"
    proc = evosearch("run", str(config), "--db", str(db), mode="rlimits" if how == "environment" else None,
                     cwd=tmp_path, **{KEY_VAR: "sk-evosearch-test-weak"})
    assert proc.returncode == 2, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "refusing to start" in message and "rlimits" in message and f"${KEY_VAR}" in message
    assert "--allow-weak-sandbox" in message and "readable by every candidate" in message
    assert "sk-evosearch-test-weak" not in proc.stderr
    assert not db.exists() and not db.with_suffix(".log").exists()  # stopped before the campaign, so before any job


def test_allow_weak_sandbox_runs_it_with_the_warning(tmp_path):
    config = write_config(tmp_path, llm_key=True)
    db = tmp_path / "weak.db"
    proc = evosearch("run", str(config), "--db", str(db), "--allow-weak-sandbox", mode="rlimits", cwd=tmp_path,
                     **{KEY_VAR: "sk-evosearch-test-weak"})
    assert proc.returncode == 0, proc.stderr
    assert "refusing" not in proc.stderr and "sandbox: rlimits" in proc.stderr
    assert sum(line.startswith(WARNING) for line in proc.stderr.splitlines()) == 1
    assert KEY_VAR in proc.stderr and "evaluations 1" in proc.stdout


def test_only_a_campaign_with_keys_in_a_weak_mode_is_refused(tmp_path, monkeypatch):
    from evosearch.cli.campaign import _refuse_keys_in_weak_mode
    from evosearch.cli.options import BadInput
    from evosearch.config import load_config

    monkeypatch.setenv(KEY_VAR, "sk-evosearch-test-weak")  # load_config checks that the variable is set
    (tmp_path / "plain").mkdir()
    (tmp_path / "keyed").mkdir()
    plain = load_config(write_config(tmp_path / "plain", llm_key=False))
    keyed = load_config(write_config(tmp_path / "keyed", llm_key=True))
    weak, strong = Mode(name="rlimits", seccomp=True), Mode(name="namespaces", seccomp=True)
    _refuse_keys_in_weak_mode(plain, weak)  # no key at stake: the warning alone
    _refuse_keys_in_weak_mode(keyed, strong)  # the key is out of the jobs' sight
    with pytest.raises(BadInput, match="--allow-weak-sandbox"):
        _refuse_keys_in_weak_mode(keyed, weak)


def test_run_help_names_the_flag_and_the_risk():
    from click.testing import CliRunner

    from evosearch.cli import main

    help_text = " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())
    assert "--allow-weak-sandbox" in help_text and "API keys" in help_text and "rlimits" in help_text
