"""``scripts/minatar_comparison.py``: the MinAtar comparison of rules, on a suite small enough for a test.

One real run (the evaluator, sandboxed training, trusted scoring) on two MinAtar games and a
held-out CartPole, with PPO-clip, A2C and a rule whose loss raises, is shared by the tests;
the published-ordering checks re-report its saved JSON (``--from-json``) without training.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys

import pytest
from conftest import ROOT, job_processes

from evosearch.envs.suites import calibration_path

#: The comparison trains 3 rules on 2 games (12 s); it is a GPU-run script, tested with `pytest -m slow`.
pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GAMES = ["MinAtar/Breakout-v1", "MinAtar/Freeway-v1", "CartPole-v1"]
SEEDS = 2

SUITE = """\
name: tiny-minatar
seeds: 2
eval_episodes: 2
tasks:
  - env_id: MinAtar/Breakout-v1
    total_steps: 2048
    train: {num_envs: 4, num_steps: 64}
  - env_id: MinAtar/Freeway-v1
    total_steps: 2048
    train: {num_envs: 4, num_steps: 64}
held_out:
  - env_id: CartPole-v1
    total_steps: 1024
calibration:
  MinAtar/Breakout-v1: {r_random: 0.4, r_ref: 3.4}
  MinAtar/Freeway-v1: {r_random: 0.4, r_ref: 29.0}
  CartPole-v1: {r_random: 22.0, r_ref: 500.0}
"""


def script():
    spec = importlib.util.spec_from_file_location("minatar_comparison", ROOT / "scripts" / "minatar_comparison.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def cells(markdown_line: str) -> list[str]:
    return [c.strip() for c in markdown_line.strip().strip("|").split("|")]


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = script().main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """One run of the script: the failing rule first, so the others are seen to run after it."""
    tmp = tmp_path_factory.mktemp("minatar_comparison")
    (tmp / "suite.yaml").write_text(SUITE)
    (tmp / "broken.py").write_text("def loss(b):\n    raise RuntimeError('boom')\n")
    # Equal published figures never order two rules; "Pong" is no game of this suite.
    (tmp / "published.json").write_text(json.dumps({"PPO-clip": {"Breakout": 1.5, "Pong": 3.0},
                                                    "a2c": {"MinAtar/Breakout-v1": 1.5}}))
    paths = {name: tmp / name for name in ("out.json", "table.md", "curves.png")}
    code, out, err = run_main("--suite", str(tmp / "suite.yaml"), "--seeds", str(SEEDS), "--device", "cpu",
                              "--rules", f"{tmp / 'broken.py'},ppo_clip,a2c", "--timeout", "300",
                              "--json", str(paths["out.json"]), "--markdown", str(paths["table.md"]),
                              "--curves", str(paths["curves.png"]), "--published", str(tmp / "published.json"))
    assert job_processes() == [], "job processes left running"
    return {"code": code, "out": out, "err": err, "tmp": tmp, **paths}


def test_every_rule_and_game_is_recorded_with_its_aggregate(comparison):
    assert comparison["code"] == 1, comparison["out"] + comparison["err"]  # the broken rule failed
    record = json.loads(comparison["out.json"].read_text())
    assert (record["suite"], record["seeds"], record["device"], record["gpu"]) == ("tiny-minatar", SEEDS, "cpu", None)
    assert record["date"] and record["machine"]
    assert [g["env_id"] for g in record["games"]] == GAMES
    assert [g["held_out"] for g in record["games"]] == [False, False, True]
    assert list(record["rules"]) == ["broken", "ppo_clip", "a2c"]
    for rule in ("ppo_clip", "a2c"):
        rec = record["rules"][rule]
        assert rec["outcome"] == "ok", rec["error"]
        assert list(rec["games"]) == GAMES
        for game in GAMES:
            g = rec["games"][game]
            assert len(g["returns"]) == len(g["normalized"]) == len(g["curves"]) == SEEDS
            assert g["return_ci"][0] <= g["mean_return"] <= g["return_ci"][1]
            assert g["curve_steps"] and all(len(c) == len(g["curve_steps"]) for c in g["curves"])
        agg = rec["aggregate"]
        assert agg["games"] == GAMES and agg["seeds"] == SEEDS
        assert agg["ci"][0] <= agg["iqm"] <= agg["ci"][1]
        assert rec["aggregate_search_tasks"]["games"] == GAMES[:2]
    cartpole = record["rules"]["ppo_clip"]["games"]["CartPole-v1"]
    assert cartpole["normalized"] == pytest.approx([(r - 22.0) / 478.0 for r in cartpole["returns"]])


def test_the_table_is_printed_and_written_as_markdown(comparison):
    out = comparison["out"]
    assert "PPO-clip: done in" in out and "A2C: done in" in out
    header, rule, *rows = (cells(line) for line in comparison["table.md"].read_text().splitlines())
    assert header == ["game", "broken", "broken (published)", "PPO-clip", "PPO-clip (published)", "A2C",
                      "A2C (published)"]
    assert set(rule) <= {"---", "---:"} and len(rule) == len(header)
    assert [r[0] for r in rows] == [*GAMES[:2], "CartPole-v1 (held out)", f"IQM normalised (3 games x {SEEDS} seeds)"]
    assert all(len(r) == len(header) for r in rows)
    breakout, iqm = rows[0], rows[-1]
    assert breakout[1] == iqm[1] == "failed (candidate_error)"
    assert (breakout[2], breakout[4], breakout[6]) == ("-", "1.50", "1.50")  # published, beside the measured
    record = json.loads(comparison["out.json"].read_text())
    ppo = record["rules"]["ppo_clip"]
    low, high = ppo["games"]["MinAtar/Breakout-v1"]["return_ci"]
    assert breakout[3] == f"{ppo['games']['MinAtar/Breakout-v1']['mean_return']:.2f} [{low:.2f}, {high:.2f}]"
    assert iqm[3] == f"{ppo['aggregate']['iqm']:.3f} [{ppo['aggregate']['ci'][0]:.3f}, {ppo['aggregate']['ci'][1]:.3f}]"
    printed = out[out.index("\ngame "):].splitlines()[1:]  # the same table, printed as text
    assert [c.strip() for c in printed[0].split(" | ")] == header
    assert [[c.strip() for c in line.split(" | ")] for line in printed[2:2 + len(rows)]] == rows
    assert "note: published figure PPO-clip / 'Pong' matches no game of this suite" in out
    assert "agrees with the published one" in out and "differs from the published ordering" not in out
    png = comparison["curves.png"].read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000


def test_a_failing_rule_is_reported_and_the_others_still_run(comparison):
    record = json.loads(comparison["out.json"].read_text())
    broken = record["rules"]["broken"]
    assert (broken["outcome"], broken["stage"]) == ("candidate_error", "smoke")
    assert "boom" in broken["error"] and broken["aggregate"] is None
    out = comparison["out"]
    assert "broken: FAILED (candidate_error, stage smoke)" in out and "RuntimeError: boom" in out
    assert out.index("broken: FAILED") < out.index("PPO-clip: done in") < out.index("A2C: done in")
    assert "failed: broken (see above)" in out


def _published(record: dict, game: str, reverse: bool) -> dict:
    """Published figures on ``game`` that order PPO-clip and A2C as measured, or the other way round."""
    ppo, a2c = (record["rules"][r]["games"][game]["mean_return"] for r in ("ppo_clip", "a2c"))
    if reverse:  # a measured tie is no published order either: a strict published one differs from it
        ppo, a2c = (1.0, 2.0) if ppo >= a2c else (2.0, 1.0)
    return {"ppo_clip": {game: ppo}, "A2C": {game.split("/")[-1]: a2c}}


def test_a_game_ordered_otherwise_than_published_is_said_so(comparison, tmp_path):
    record = json.loads(comparison["out.json"].read_text())
    game = "CartPole-v1"
    (tmp_path / "reversed.json").write_text(json.dumps(_published(record, game, reverse=True)))
    code, out, _ = run_main("--from-json", str(comparison["out.json"]), "--published", str(tmp_path / "reversed.json"),
                            "--json", str(tmp_path / "again.json"))
    assert code == 1  # the broken rule is still a failed rule of that run
    warnings = [line for line in out.splitlines() if "differs from the published ordering" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"WARNING: {game}:")
    assert "investigate before accepting the result" in warnings[0]
    again = json.loads((tmp_path / "again.json").read_text())
    assert [d["game"] for d in again["ordering_differs"]] == [game]
    assert again["rules"] == record["rules"]

    (tmp_path / "same.json").write_text(json.dumps(_published(record, game, reverse=False)))
    _, out, _ = run_main("--from-json", str(comparison["out.json"]), "--published", str(tmp_path / "same.json"))
    assert "differs from the published ordering" not in out and "agrees with the published one" in out


def test_bad_inputs_are_refused_before_any_training(comparison, tmp_path):
    suite = str(comparison["tmp"] / "suite.yaml")
    code, _, err = run_main("--suite", suite, "--rules", "ppo_clip,no_such_rule", "--device", "cpu")
    assert code == 2 and "no rule 'no_such_rule'" in err
    code, _, err = run_main("--suite", suite, "--rules", "ppo_clip", "--device", "cpu", "--curves", "x.pdf")
    assert code == 2 and "use a .png or .svg file" in err
    (tmp_path / "bad.json").write_text(json.dumps({"ppo_clip": {"Breakout": "high"}}))
    code, _, err = run_main("--suite", suite, "--rules", "ppo_clip", "--device", "cpu",
                            "--published", str(tmp_path / "bad.json"))
    assert code == 2 and "is not a number" in err
    if not calibration_path("minatar").exists():  # the default suite needs a GPU to calibrate
        code, _, err = run_main("--rules", "ppo_clip", "--device", "cpu")
        assert code == 2 and "has no calibration" in err and "suite calibrate minatar --device cuda" in err
