"""`evosearch eval` as a user runs it: the table, the --json schema, the exit codes, --device.

What trains or runs a job does so in a fresh interpreter (``run_cli``); usage errors, refused before
any evaluation, go through the same command in this process (``cli_in_process``: the same exit code
and messages, without ~2 s of imports per call).
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, RULES, TINY_SUITE, cli_in_process


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evosearch.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_eval_json_schema_for_a_good_rule():
    # (No hurdle: the JSON is the same without it; the CLI's hurdle stage is in test_cli_eval_progress.py.)
    proc = run_cli("eval", str(RULES / "ppo_clip.py"), "--suite", TINY_SUITE, "--json", "--held-out", "--confirm",
                   "--no-hurdle")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["outcome"] == "ok" and data["stage"] == "full"
    assert isinstance(data["score"], float)
    lo, hi = data["ci"]
    assert lo <= data["score"] <= hi
    assert len(data["fingerprint"]) == 32 and data["wall_s"] > 0
    task = data["tasks"]["CartPole-v1"]
    assert len(task["returns"]) == len(task["normalized"]) == 2
    assert all(isinstance(x, float) for x in task["returns"] + task["normalized"])
    assert set(data["held_out"]) == {"Acrobot-v1"}
    # --confirm: measured again on seeds the search never used, kept beside the search score.
    confirmed = data["confirmed"]
    assert confirmed["outcome"] == "ok" and confirmed["seeds"] == 4 and confirmed["first_seed"] == 1000
    assert set(confirmed["tasks"]) == {"CartPole-v1"} and set(confirmed["held_out"]) == {"Acrobot-v1"}
    assert confirmed["ci"][0] <= confirmed["score"] <= confirmed["ci"][1]
    assert "confirmation" in proc.stderr  # the progress names the confirmation's training
    assert data["cpu_s"] > 0 and 100 < data["peak_rss_mb"] < 4096


def test_an_uncalibrated_suite_is_refused_before_training(tmp_path):
    suite = tmp_path / "uncalibrated.yaml"
    suite.write_text("name: uncalibrated-test\nseeds: 1\ntasks:\n  - {env_id: CartPole-v1, total_steps: 512}\n")
    proc = cli_in_process("eval", str(RULES / "a2c.py"), "--suite", str(suite))
    assert proc.returncode == 2
    assert "evosearch suite calibrate uncalibrated-test" in proc.stderr


def test_eval_table_and_exit_code_for_a_broken_rule(tmp_path):
    bad = tmp_path / "bad_rule.py"
    bad.write_text("def loss(b):\n    return b.logp + b.value\n")
    proc = run_cli("eval", str(bad), "--suite", TINY_SUITE)
    assert proc.returncode == 1
    assert "candidate_error" in proc.stdout and "smoke" in proc.stdout
    assert "expected a 0-d tensor" in proc.stdout


def test_eval_json_for_a_rejected_rule(tmp_path):
    bad = tmp_path / "bad_rule.py"
    bad.write_text("import socket\ndef loss(b):\n    return b.logp.mean()\n")
    proc = run_cli("eval", str(bad), "--suite", TINY_SUITE, "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert (data["outcome"], data["stage"], data["score"]) == ("rejected", "static", None)
    assert "socket" in data["error"]
    from evosearch.sandbox import modes

    # The warning line of a weak mode (tests/cli/test_cli_weak_sandbox.py), in the mode this command ran in.
    weak = not modes.detect(os.environ.get("EVOSEARCH_SANDBOX") or "auto").strong
    assert ("warning: sandbox mode" in proc.stderr) == weak, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("eval", "no/such/file.py"),
        ("eval", str(RULES / "a2c.py"), "--suite", "no-such-suite"),
        ("eval", str(RULES / "a2c.py"), "--seeds", "0"),
        ("eval",),
        ("frobnicate",),
    ],
)
def test_bad_usage_exits_2_with_a_message(args):
    proc = cli_in_process(*args)
    assert proc.returncode == 2
    assert "Error" in proc.stderr or "Usage" in proc.stderr


def test_same_command_same_returns(a2c_eval):
    # The same command in a fresh interpreter and in this test process (the shared run of conftest.a2c_eval).
    runs = [json.loads(run_cli("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE, "--json").stdout),
            json.loads(a2c_eval.stdout)]
    assert runs[0]["tasks"]["CartPole-v1"]["returns"] == runs[1]["tasks"]["CartPole-v1"]["returns"]
    assert runs[0]["score"] == runs[1]["score"] and runs[0]["fingerprint"] == runs[1]["fingerprint"]


def test_a_sandbox_mode_that_cannot_run_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("EVOSEARCH_SANDBOX", "chroot")
    proc = run_cli("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE)
    assert proc.returncode == 2
    assert "unknown sandbox mode 'chroot'" in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_is_a_usage_error():
    proc = cli_in_process("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE, "--device", "cuda")
    assert proc.returncode == 2
    assert "torch sees no CUDA GPU" in proc.stderr


def test_device_takes_what_the_config_takes_and_names_the_choices():
    proc = cli_in_process("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE, "--device", "gpu")
    assert proc.returncode == 2 and "use auto, cpu, cuda or cuda:N" in proc.stderr
    proc = cli_in_process("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE, "--device", "cuda:99")
    assert proc.returncode == 2  # a valid name: refused by the device check, not by the option
    assert "cuda:99" in proc.stderr and "use auto, cpu, cuda or cuda:N" not in proc.stderr


def test_eval_has_no_csv_and_says_so():
    proc = cli_in_process("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE, "--csv")
    assert proc.returncode == 2 and "no CSV output" in proc.stderr and "--json" in proc.stderr


def test_a_device_for_a_policy_is_refused_with_the_reason(tmp_path):
    from click.testing import CliRunner

    from evosearch.cli import main

    policy = str(ROOT / "programs" / "policies" / "cartpole.py")
    result = CliRunner().invoke(main, ["eval", policy, "--device", "cuda:0"])
    assert result.exit_code == 2, result.output
    assert "does not apply to policies" in result.output and "played, not trained" in result.output


def test_the_table_shows_the_confirmed_score_beside_the_search_score(capsys):
    from evosearch.cli.eval import _print_eval_table
    from evosearch.evaluate.result import EvalResult

    result = EvalResult(outcome="ok", stage="full", score=0.8, ci=[0.6, 1.0], suite="tiny", confirmed={
        "outcome": "ok", "score": 0.5, "ci": [0.4, 0.6], "seeds": 4, "first_seed": 1000, "tasks": {},
        "held_out": {"Acrobot-v1": {"normalized_mean": 0.1, "ci": [0.0, 0.2]}}})
    _print_eval_table(result, "a2c.py")
    said = " ".join(capsys.readouterr().out.split())
    assert "confirmed on 4 fresh seeds (from seed 1000): 0.500" in said
    assert "search score minus confirmed: 0.300" in said and "held-out Acrobot-v1: 0.100" in said


def test_confirm_is_for_rules():
    proc = cli_in_process("eval", str(ROOT / "programs" / "policies" / "cartpole.py"), "--confirm")
    assert proc.returncode == 2 and "--confirm is for rules" in proc.stderr
