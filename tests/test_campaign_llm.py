"""A campaign whose proposer is an LLM behind a real local HTTP server that replays scripted answers.

Each kind of answer (a good edit, an edit that does not apply, prose, an odd fence, a rewrite,
429 then success, 500, a hang past the timeout) must leave its trace in ``llm_calls`` and the
programs, and none may stop the campaign.
"""

import itertools
import json
import re
import sqlite3
import time

import pytest
from conftest import campaign_config, cli_in_process
from fake_openai import FakeOpenAI, Reply

from evosearch.campaign import Campaign

MODEL = "scripted"


def vf_coef(request: dict) -> str:
    """The parent's VF_COEF as the prompt shows it (the parent comes first in the prompt)."""
    user = request["messages"][1]["content"]
    return re.search(r"^VF_COEF = (\S+)$", user, re.MULTILINE).group(1)


def diff(request: dict, new: str) -> str:
    return (f"Raising the value weight.\n```python\n<<<<<<< SEARCH\nVF_COEF = {vf_coef(request)}\n=======\n"
            f"VF_COEF = {new}\n>>>>>>> REPLACE\n```\n")


REWRITE = """Here is a new loss:
~~~py
def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()
    return pg_loss - 0.0123 * b.entropy.mean() + 0.43 * v_loss
~~~
"""


class Script:
    """The LLM's answers, one per HTTP request, built from the request when they are edits."""

    def __init__(self):
        self.steps = [
            lambda r: diff(r, "0.41"),                                        # good edit
            lambda r: "<<<<<<< SEARCH\nVF_COEF = 9.99\n=======\nVF_COEF = 1.0\n>>>>>>> REPLACE\n",  # does not apply
            lambda r: diff(r, "0.42"),                                        # the retry, after the error
            lambda r: "I would increase the entropy bonus and normalise the advantages.",  # prose, no code
            lambda r: REWRITE,                                                # a rewrite in an odd fence
            lambda r: Reply(status=429, headers={"Retry-After": "0"}),        # rate limited ...
            lambda r: diff(r, "0.44"),                                        # ... then fine
            lambda r: Reply(status=500),                                      # server error ...
            lambda r: diff(r, "0.45"),                                        # ... then fine
        ]
        self.calls = 0

    def __call__(self, request: dict):
        self.calls += 1
        if self.calls <= len(self.steps):
            return self.steps[self.calls - 1](request)
        return Reply(hang=3.0)  # from here on the endpoint hangs past the client's timeout


def llm_config(base_url: str, **llm):
    model = {"model": MODEL, "base_url": base_url, "weight": 1000.0, "timeout_s": 1.0, "max_retries": 1,
             "price_in_per_1k": 0.01, "price_out_per_1k": 0.03, **llm.pop("model", {})}
    return {"models": [model], "max_attempts": 3, "cooldown_s": 600, "max_in_flight": 1, **llm}


def rows(db, sql, *args):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    found = conn.execute(sql, args).fetchall()
    conn.close()
    return found


@pytest.mark.slow  # 23 s; a dead endpoint and the cost cap stay in the default run
def test_every_kind_of_answer_is_recorded_and_the_campaign_never_stops(tmp_path):
    script = Script()
    with FakeOpenAI(script) as server:
        config = campaign_config("llm", parallel=1, operators={"enabled": ["ast.constant"]},
                                 llm=llm_config(server.base_url))
        campaign = Campaign(config, db_path=tmp_path / "l.db")
        summary = campaign.run(max_evals=16)
        campaign.close()
        assert not server.errors
    db = tmp_path / "l.db"
    assert summary.evaluations == 16 and summary.stop_reason == "evaluation budget reached"
    calls = rows(db, "SELECT * FROM llm_calls ORDER BY id")
    statuses = [c["status"] for c in calls]
    assert statuses[:6] == ["ok", "edit_error", "ok", "edit_error", "ok", "ok"]
    assert statuses[-1] == "llm_error" and "timeout" in calls[-1]["error"]
    assert "does not match" in calls[1]["error"] and calls[1]["conversation"] == calls[2]["conversation"]
    assert "no code found" in calls[3]["error"]
    # the failed attempt was sent back: the retry's prompt holds the model's answer and the error
    retry_prompt = json.loads(calls[2]["prompt"])
    assert retry_prompt[-2]["role"] == "assistant" and "9.99" in retry_prompt[-2]["content"]
    assert "does not match" in retry_prompt[-1]["content"]
    programs = rows(db, "SELECT * FROM programs WHERE operator = 'llm' ORDER BY id")
    assert len(programs) == 5 and all(p["model"] == MODEL for p in programs)
    assert [re.search(r"VF_COEF = (\S+)", p["source"]).group(1) for p in programs if "VF_COEF" in p["source"]] == [
        "0.41", "0.42", "0.44", "0.45"]
    assert "rewrite" in programs[2]["note"] and "0.0123" in programs[2]["source"]
    for program in programs:  # each carries its prompt and the response it came from
        [ok] = rows(db, "SELECT * FROM llm_calls WHERE program_id = ?", program["id"])
        assert program["parent_id"] == ok["parent_id"]
        parent_source = rows(db, "SELECT source FROM programs WHERE id = ?", program["parent_id"])[0]["source"]
        block = parent_source.split("# EVOLVE-BLOCK-START")[1].split("# EVOLVE-BLOCK-END")[0]
        assert block.strip() in json.loads(ok["prompt"])[1]["content"]
        assert ok["response"] and ok["prompt_tokens"] > 0 and ok["cost"] > 0
    assert rows(db, "SELECT COUNT(*) AS n FROM programs WHERE operator = 'ast.constant' AND status = 'done'")[0][
        "n"] >= 1  # after the endpoint hung, the offline operator carried the campaign
    hits = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert len(hits) == script.calls >= 11  # 9 scripted + the hang, retried once
    spend = sum(c["cost"] for c in calls)
    state = json.loads(rows(db, "SELECT state FROM campaigns")[0]["state"])
    assert state["llm_cost"] == pytest.approx(spend) and spend > 0


def test_the_cost_cap_holds_and_the_campaign_goes_on_offline(tmp_path):
    with FakeOpenAI(lambda r: diff(r, f"0.{len(r['messages'][1]['content']) % 97 + 1:02d}")) as server:
        config = campaign_config("capped", parallel=2, operators={"enabled": ["ast.constant", "ast.operator"]},
                                 llm=llm_config(server.base_url, cost_cap=0.05, max_attempts=1,
                                                model={"max_tokens": 300}))
        campaign = Campaign(config, db_path=tmp_path / "c.db")
        summary = campaign.run(max_evals=10)
        campaign.close()
    calls = rows(tmp_path / "c.db", "SELECT cost FROM llm_calls")
    spend = sum(c["cost"] for c in calls)
    assert len(calls) >= 2 and 0 < spend <= 0.05  # it used the budget, and never passed it
    assert campaign.llm.capped and summary.evaluations == 10
    offline = rows(tmp_path / "c.db", "SELECT COUNT(*) AS n FROM programs WHERE operator LIKE 'ast.%'")[0]["n"]
    assert offline >= 1


def test_a_dead_endpoint_does_not_stop_the_campaign(tmp_path):
    config = campaign_config("dead", parallel=1, operators={"enabled": ["ast.constant"]},
                             llm=llm_config("http://127.0.0.1:9/v1", model={"max_retries": 0}))
    campaign = Campaign(config, db_path=tmp_path / "d.db")
    summary = campaign.run(max_evals=4)
    campaign.close()
    assert summary.evaluations == 4
    [call] = rows(tmp_path / "d.db", "SELECT * FROM llm_calls")
    assert call["status"] == "llm_error" and "connection" in call["error"]
    assert campaign.llm.status()[MODEL].startswith("resting")


class Slow:
    """Every program fails at once after a short pause: the share tests count proposals and need no training.

    The pause is longer than the fake model takes to answer, so a model asked on its turn is free again by
    the next one and the realised share does not depend on thread timing.
    """

    def evaluate(self, program, skip_if=None):
        from evosearch.evaluate import EvalResult

        time.sleep(0.25)
        return EvalResult(outcome="candidate_error", stage="smoke", fingerprint=program.sha,
                          error="not trained in this test")


def rewrites():
    """A model that answers every request with a new whole-block rewrite (a fresh constant each time)."""
    count = itertools.count(1)
    return lambda request: REWRITE.replace("0.0123", f"0.{next(count):04d}")


def share_campaign(tmp_path, share: float, evaluations: int):
    with FakeOpenAI(rewrites()) as server:
        config = campaign_config(f"share{share}", parallel=1,
                                 operators={"enabled": ["ast.constant", "ast.operator", "ast.drop_term"]},
                                 llm=llm_config(server.base_url, share=share, max_attempts=1,
                                                model={"weight": 1.0}))
        campaign = Campaign(config, db_path=tmp_path / "s.db", evaluator=Slow())
        summary = campaign.run(max_evals=evaluations)
        campaign.close()
        hits = [r for r in server.requests if r.path.endswith("/chat/completions")]
    state = json.loads(rows(tmp_path / "s.db", "SELECT state FROM campaigns")[0]["state"])
    return summary, state, hits


def test_the_models_get_their_share_of_the_proposals(tmp_path):
    summary, state, hits = share_campaign(tmp_path, 0.5, 20)
    mix = state["proposal_mix"]
    total = mix["llm"] + mix["offline"]
    assert total >= 20 and abs(mix["llm"] - total / 2) <= 2  # the bandit alone gave a model ~1 in 9
    assert len(hits) == mix["llm"]  # each of the models' turns asked it (one answer each here)
    assert state["llm_share"] == pytest.approx(mix["llm"] / total) == summary.llm_share
    llm_programs = rows(tmp_path / "s.db", "SELECT COUNT(*) AS n FROM programs WHERE operator = 'llm'")[0]["n"]
    assert llm_programs == mix["llm"]
    shown = cli_in_process("status", "--db", str(tmp_path / "s.db"))
    assert f"LLM share: {100 * mix['llm'] / total:.0f}% of proposals ({mix['llm']} of {total}); target 50%" \
        in shown.stdout, shown.stdout
    listed = json.loads(cli_in_process("status", "--db", str(tmp_path / "s.db"), "--json").stdout)[0]
    assert (listed["llm_share_target"], listed["proposal_mix"]) == (0.5, mix)


def test_a_share_of_0_never_asks_the_model(tmp_path):
    summary, state, hits = share_campaign(tmp_path, 0.0, 6)
    assert hits == [] and state["proposal_mix"]["llm"] == 0 and state["llm_share"] == 0.0
    assert summary.evaluations == 6


def test_the_share_keeper_alternates_falls_back_and_catches_up():
    from evosearch.campaign_llm import ShareKeeper

    keeper, both = ShareKeeper(0.5, {}), ["ast.constant", "llm:a", "llm:b"]
    turns = []
    for _ in range(4):
        allowed = keeper.narrow(both)
        turns.append("llm" if allowed == ["llm:a", "llm:b"] else "offline")
        keeper.count(allowed[0])
    assert turns == ["llm", "offline", "llm", "offline"]
    for _ in range(3):  # the models' turn, but none can be asked: an operator proposes instead
        assert keeper.narrow(["ast.constant"]) == ["ast.constant"]
        keeper.count("ast.constant")
    assert keeper.realised() == pytest.approx(2 / 7)
    for _ in range(2):  # a model can be asked again: the models take the next turns until they catch up
        assert keeper.narrow(both) == ["llm:a", "llm:b"]
        keeper.count("llm:a")
    assert keeper.state["proposal_mix"] == {"llm": 4, "offline": 5}
    assert ShareKeeper(0.0, {}).narrow(both) == ["ast.constant"] and ShareKeeper(1.0, {}).narrow(both) == both[1:]
