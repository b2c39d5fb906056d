"""`evosearch llm check` against a fake OpenAI-protocol server: a sample edit, and a clear failure."""

import json
import subprocess
import sys


def llm_config(tmp_path, base_url: str, key_env: str | None = None) -> str:
    from conftest import campaign_config

    raw = json.loads(json.dumps(campaign_config("check").to_dict()))
    raw.pop("source_path")
    raw["llm"] = {"models": [{"name": "fake", "model": "fake-model", "base_url": base_url, "api_key_env": key_env,
                              "max_retries": 0, "timeout_s": 5}]}
    path = tmp_path / "llm.yaml"
    path.write_text(json.dumps(raw))
    return str(path)


def llm_check(tmp_path, base_url: str, env: dict | None = None, key_env: str | None = None):
    """``evosearch llm check`` in a fresh interpreter."""
    import os

    path = llm_config(tmp_path, base_url, key_env)
    return subprocess.run([sys.executable, "-m", "evosearch.cli", "llm", "check", path], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def llm_check_in_process(tmp_path, monkeypatch, base_url: str, env: dict | None = None, key_env: str | None = None):
    """The same command in this process (``cli_in_process``: its exit code, stdout and stderr), ``env`` set for it."""
    from conftest import cli_in_process

    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return cli_in_process("llm", "check", llm_config(tmp_path, base_url, key_env))


def test_llm_check_shows_a_sample_edit(tmp_path):
    from fake_openai import FakeOpenAI

    edit = "<<<<<<< SEARCH\nVF_COEF = 0.5\n=======\nVF_COEF = 0.25\n>>>>>>> REPLACE\n"  # the first seed: reinforce
    with FakeOpenAI([edit], api_key="sekrit") as server:
        proc = llm_check(tmp_path, server.base_url, {"FAKE_KEY": "sekrit"}, "FAKE_KEY")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "answer 1:" in proc.stdout and "prompt +" in proc.stdout
    assert "-VF_COEF = 0.5" in proc.stdout and "+VF_COEF = 0.25" in proc.stdout


def test_llm_check_names_a_wrong_url_or_key(tmp_path, monkeypatch):
    from fake_openai import FakeOpenAI

    # The failures in this process (a fresh interpreter runs the command in the test above).
    proc = llm_check_in_process(tmp_path, monkeypatch, "http://127.0.0.1:9/v1")
    assert proc.returncode == 1 and "FAILED" in proc.stdout and "connection refused" in proc.stdout
    with FakeOpenAI(["unused"], api_key="right") as server:
        proc = llm_check_in_process(tmp_path, monkeypatch, server.base_url, {"FAKE_KEY": "wrong"}, "FAKE_KEY")
    assert proc.returncode == 1 and "401" in proc.stdout and "FAKE_KEY" in proc.stdout
    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    proc = llm_check_in_process(tmp_path, monkeypatch, "http://127.0.0.1:9/v1", key_env="NO_SUCH_KEY_VARIABLE")
    assert proc.returncode == 2 and "NO_SUCH_KEY_VARIABLE is not set" in proc.stderr
