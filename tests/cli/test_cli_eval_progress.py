"""`evosearch eval` shows its progress on stderr: plain lines in a pipe, a live line on a terminal.

An evaluation takes minutes and printed nothing until its table. Each line names the stage and,
while training or playing, the task and its seeds; ``--json`` keeps stdout to the one object.
"""

from __future__ import annotations

import json
import re

from conftest import ROOT, RULES, TINY_SUITE, cli_in_process, on_a_terminal

POLICY_SUITE = str(ROOT / "tests" / "data" / "policy_tiny.yaml")
LINE = re.compile(r"^\[\d+:\d\d:\d\d\] (static|smoke|hurdle|full|held-out|done): \S")


def test_plain_lines_name_each_stage_task_and_seeds_and_json_stays_clean(a2c_eval):
    proc = a2c_eval  # eval a2c.py --suite tiny --json, in this process
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcome"] == "ok"  # stdout is the one object, nothing else
    lines = proc.stderr.splitlines()
    assert lines and all(LINE.match(line) for line in lines), proc.stderr
    assert "\r" not in proc.stderr  # not a terminal: no live line
    text = "\n".join(lines)
    assert "smoke: passed, fingerprint" in text
    assert "hurdle: training CartPole-v1 (seed 0)" in text and "hurdle: CartPole-v1 done" in text
    assert "full: training CartPole-v1 (seeds 0-1)" in text and "full: CartPole-v1 done, normalised score" in text
    assert lines[-1].split("] ", 1)[1].startswith("done: ok at stage full, score ")


def test_a_program_stopped_early_says_where(tmp_path):
    bad = tmp_path / "bad_rule.py"
    bad.write_text("import socket\ndef loss(b):\n    return b.logp.mean()\n")
    proc = cli_in_process("eval", str(bad), "--suite", TINY_SUITE, "--json")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].endswith("static: checking the source")
    assert lines[-1].endswith("done: rejected at stage static in " + lines[-1].rsplit(" in ", 1)[1])
    assert "smoke" not in proc.stderr


def test_a_policy_reports_the_task_it_plays():
    proc = cli_in_process("eval", str(ROOT / "programs" / "policies" / "cartpole.py"), "--suite", POLICY_SUITE)
    assert proc.returncode == 0, proc.stderr
    assert "full: playing CartPole-v1 (seeds 0-1, 3 episodes each)" in proc.stderr
    assert "full: CartPole-v1 done" in proc.stderr




def test_a_terminal_gets_a_live_line_of_what_runs_drawn_without_escapes():
    shown = on_a_terminal("eval", str(RULES / "a2c.py"), "--suite", TINY_SUITE, "--no-hurdle", "--held-out")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # colours, from the table
    assert "outcome ok at stage full" in plain, shown  # the table came after the progress
    # The live line: redrawn over itself with a carriage return, naming what trains and the clock.
    redraws = [part for part in shown.split("\r") if part.startswith("[0:") and part.rstrip().endswith("...")]
    assert any("full: training CartPole-v1 (seeds 0-1) ..." in part for part in redraws), shown
    assert any("held-out: training Acrobot-v1 (seeds 0-1) ..." in part for part in redraws), shown
    assert "held-out: Acrobot-v1 done" in shown
    # Only colours (from the table) may be escape sequences: the live line moves no cursor.
    assert "\x1b" not in plain
    assert not any("done" in part for part in redraws)  # nothing is drawn after the last line


def test_eval_on_a_suite_file_that_is_not_there_says_the_file_is_missing():
    out = cli_in_process("eval", str(RULES / "a2c.py"), "--suite", "missing/suite.yaml")
    assert out.returncode == 2
    assert "no suite file missing/suite.yaml: it does not exist" in out.stderr
