"""The config reference in docs/campaign.md names every key of the config dataclasses, with its default.

The reference is written by hand (with the comments a reader needs), so this test is what keeps
it from drifting: a field added to a dataclass in evosearch/config.py without a line in the
reference, or a default changed in one place only, fails here. docs/llm.md must name every LLM
option as well.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from evosearch.config import CampaignConfig, ConfigError, LLMConfig, LLMModelConfig, config_from_dict

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: Set by the loader (where the config was read from), not by a user.
INTERNAL = {"source_path"}
#: Defaults the reference shows as a placeholder or an example rather than as the value.
NOT_LITERAL = {"parallel": "<cores>, the machine's", "llm.models": "an example entry; the default is none"}


def reference() -> dict:
    """The YAML block under "## The config" in docs/campaign.md."""
    text = (DOCS / "campaign.md").read_text(encoding="utf-8")
    section = text.split("\n## The config\n", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, "docs/campaign.md: no ```yaml block under '## The config'"
    return yaml.safe_load(block.group(1))


def dataclass_of(hint: Any) -> type | None:
    """The config dataclass a field holds, alone or as the items of a tuple; None for a plain value."""
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
        return typing.get_args(hint)[0]
    return None


def walk(cls: type, documented: Any, where: str = "") -> list[str]:
    """Every field of ``cls`` (and of the dataclasses inside it) that ``documented`` does not name."""
    entries = documented if isinstance(documented, list) else [documented]
    entries = [e for e in entries if isinstance(e, dict)]
    named = {key for entry in entries for key in entry}
    missing = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if f.name in INTERNAL:
            continue
        if f.name not in named:
            missing.append(key)
            continue
        inner = dataclass_of(hints[f.name])
        if inner is not None:
            missing += walk(inner, [e[f.name] for e in entries if f.name in e][0], key)
    return missing


def plain(value: Any) -> Any:
    """A default as YAML would spell it: dataclasses as mappings, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def defaults(cls: type, documented: Any, where: str = "") -> list[str]:
    """Fields whose documented value differs from the dataclass default."""
    wrong = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if f.name in INTERNAL or f.name not in documented or key in NOT_LITERAL:
            continue
        inner = dataclass_of(hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            continue  # required: the reference shows an example
        if inner is not None and typing.get_origin(hints[f.name]) is not tuple:
            wrong += defaults(inner, documented[f.name], key)
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if plain(default) != documented[f.name]:
            wrong.append(f"{key}: documented {documented[f.name]!r}, default {plain(default)!r}")
    return wrong


def test_the_reference_names_every_config_key():
    missing = walk(CampaignConfig, reference())
    assert not missing, f"docs/campaign.md's config reference lacks: {', '.join(missing)}"


def test_the_reference_shows_each_default():
    wrong = defaults(CampaignConfig, reference())
    example_model = reference()["llm"]["models"][0]
    wrong += defaults(LLMModelConfig, example_model, "llm.models[0]")
    assert not wrong, "docs/campaign.md's config reference is stale:\n" + "\n".join(wrong)


def test_the_reference_names_no_key_the_config_lacks():
    raw = reference()
    raw["parallel"] = 1
    raw["llm"]["models"] = []  # an example entry, with a URL nobody should contact from a test
    try:
        config_from_dict(raw)
    except ConfigError as err:  # the example's seed paths do not exist from here: only key problems count
        assert not [p for p in err.problems if p.startswith("unknown key")]


@pytest.mark.parametrize("cls", [LLMConfig, LLMModelConfig], ids=lambda c: c.__name__)
def test_docs_llm_names_every_llm_option(cls):
    text = (DOCS / "llm.md").read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(cls) if not re.search(rf"(^|\s){f.name}:|`{f.name}`", text, re.M)]
    assert not missing, f"docs/llm.md does not document: {', '.join(missing)}"


def test_the_test_notices_a_missing_key():
    """A reference without ``evaluation.device`` or a model's ``header_env`` must fail the walk."""
    raw = reference()
    del raw["evaluation"]["device"]
    del raw["llm"]["models"][0]["header_env"]
    assert walk(CampaignConfig, raw) == ["evaluation.device", "llm.models.header_env"]
