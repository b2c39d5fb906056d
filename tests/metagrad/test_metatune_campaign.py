"""A campaign with ``metatune:`` runs it as one more operator: children enter the archive, the bandit learns."""

from __future__ import annotations

import json

import pytest
from conftest import campaign_config

from evosearch.campaign import Campaign
from evosearch.config import ConfigError, config_from_dict


def test_metatune_children_are_scored_and_the_bandit_weighs_the_operator(tmp_path):
    # One evaluation at a time and two operators, so the run is the same every time; metatune is
    # due after every 2 evaluations, on an elite it has not tuned before.
    config = campaign_config(parallel=1, rng_seed=3, budget={"max_evals": 8},
                             operators={"enabled": ["ast.constant"]},
                             metatune={"every": 2, "meta_steps": 2, "population": 2})
    campaign = Campaign(config, db_path=tmp_path / "m.db")
    try:
        campaign.run()
        children = campaign.archive.list_programs(campaign.campaign_id, operator="metatune")
        assert children, "metatune never proposed"
        for child in children:
            assert child["parent_id"] is not None and child["outcome"] is not None
            assert child["note"].startswith("metatune (2 meta-steps):")
        assert any(c["outcome"] == "ok" and c["score"] is not None for c in children)
        assert len({c["parent_id"] for c in children}) == len(children)  # an elite is tuned once
        assert campaign.bandit.trials.get("metatune", 0) == len([c for c in children if c["outcome"]])
    finally:
        campaign.close()


def test_metatune_config_is_checked():
    with pytest.raises(ConfigError) as err:
        raw = json.loads(json.dumps(campaign_config().to_dict()))
        config_from_dict({**raw, "metatune": {"every": -1, "inner_steps": 0, "device": "auto", "method": "sgd"}})
    text = str(err.value)
    for key in ("metatune.every", "metatune.inner_steps", "metatune.device", "metatune.method"):
        assert key in text
