"""A campaign confirms a challenger before it contests a confirmed elite, and the cell goes to the better confirmed."""

import json
import sqlite3

from conftest import campaign_config

from evosearch.campaign import Campaign
from evosearch.evaluate import EvalResult

#: (search score, confirmed score) of the 1st, 2nd, ... evaluation, in the order the campaign runs them.
SCRIPT = [
    (1.0, 0.5),  # a seed: the best so far, so confirmed; it takes the (only) cell
    (0.8, 0.7),  # the other seed: neither the best nor above the elite's search score: not confirmed
    (1.2, 0.3),  # the best search score: confirmed (top 1), and it loses the cell on confirmed scores
    (0.9, 0.9),  # below the confirmed elite's search score: not confirmed, and it loses on search scores
    (1.1, 0.8),  # not the best (1.2), but above the elite's 1.0: confirmed to contest it, and wins (0.8 > 0.5)
]


class Scripted:
    """Scores come from SCRIPT (a test of the campaign's rules, not of training); confirm() as the real one."""

    def __init__(self) -> None:
        self.calls = 0
        self.confirmed: list[int] = []

    def evaluate(self, program, skip_if=None):
        score, _ = SCRIPT[self.calls]
        self.calls += 1
        return EvalResult(outcome="ok", stage="full", score=score, ci=[score - 0.2, score + 0.2],
                          fingerprint=f"f{self.calls}")

    def confirm(self, program, result):
        index = next(i for i, (score, _) in enumerate(SCRIPT) if score == result.score)
        self.confirmed.append(index + 1)
        result.confirmed = {"outcome": "ok", "score": SCRIPT[index][1], "ci": None, "seeds": 12, "first_seed": 1000}
        return result


def test_a_challenger_is_confirmed_to_contest_a_confirmed_elite(tmp_path):
    config = campaign_config(parallel=1, budget={"max_evals": len(SCRIPT)}, confirm={"top": 1, "seeds": 12},
                             archive={"islands": 1, "descriptors": [{"name": "code_size", "min": 0, "max": 10_000,
                                                                     "bins": 1}]})
    evaluator = Scripted()
    campaign = Campaign(config, db_path=tmp_path / "c.db", evaluator=evaluator)
    campaign.run()
    campaign.close()
    assert evaluator.confirmed == [1, 3, 5]
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT eval_seq, score, metrics FROM programs WHERE status = 'done' ORDER BY eval_seq")
    confirmed = {r["eval_seq"]: json.loads(r["metrics"]).get("confirmed", {}).get("score") for r in rows}
    assert confirmed == {1: 0.5, 2: None, 3: 0.3, 4: None, 5: 0.8}
    cell = conn.execute("SELECT c.score, c.confirmed, p.eval_seq FROM cells c JOIN programs p ON p.id = c.program_id")
    assert tuple(cell.fetchone()) == (1.1, 0.8, 5)
    conn.close()
    from conftest import cli_in_process

    listed = json.loads(cli_in_process("archive", "best", "--db", str(tmp_path / "c.db"), "--json").stdout)
    assert [(p["score"], p["confirmed"]) for p in listed] == [(1.2, 0.3), (1.1, 0.8), (1.0, 0.5), (0.9, None),
                                                             (0.8, None)]
    table = cli_in_process("archive", "best", "--db", str(tmp_path / "c.db")).stdout
    assert "confirmed" in table and "0.800" in table
