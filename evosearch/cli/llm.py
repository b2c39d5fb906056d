"""``evosearch llm check CONFIG``: contact each configured LLM endpoint and show a sample edit.

Much of what it prints comes from the endpoint (model lists, error messages, the edit and its
note), so every line goes out through :func:`_say`: one line, controls made safe.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evosearch.cli.options import BadInput
from evosearch.cli.render import echo


@click.group("llm")
def llm_group() -> None:
    """The configured LLM endpoints."""


@llm_group.command("check")
@click.argument("config_file", metavar="CONFIG", type=click.Path(path_type=Path))
def llm_check(config_file: Path) -> None:
    """Contact each model in CONFIG: latency, tokens, cost, and one sample edit of the first seed.

    Exit 0 when every endpoint answered, 1 when one failed (the message says why), 2 for a bad config.
    """
    import difflib
    import time

    from evosearch.config import ConfigError, config_dir, llm_template_dir, load_config
    from evosearch.propose.base import Parent
    from evosearch.propose.llm import LlmProposer, LlmRequest
    from evosearch.propose.llm_client import LLMError

    try:
        config = load_config(config_file)
    except ConfigError as err:
        raise BadInput(str(err)) from err
    if not config.llm.models:
        raise BadInput(f"{config_file}: no llm.models configured")
    seed = config.seed_paths()[0]
    parent = Parent(source=seed.read_text(encoding="utf-8"), kind=config.kind)
    proposer = LlmProposer(config.llm, llm_template_dir(config.llm, config_dir(config)))
    failed = False
    for model in config.llm.models:
        _say(f"{model.label}: {model.model} at {model.base_url}")
        try:
            served = proposer.clients[model.label].list_models()
            if served and model.model not in served:
                _say(f"  warning: the endpoint lists {', '.join(served[:8])}, not {model.model}")
        except LLMError as err:
            _say(f"  (listing models: {err.message})")
        request = LlmRequest(model=model, kind=config.kind, parent=parent, feedback=None, inspirations=[], seed=0,
                             source_known=lambda sha: False, fingerprint_known=lambda fp: False,
                             fingerprint=lambda source: None)
        started = time.monotonic()
        result = proposer.propose(request)
        took = time.monotonic() - started
        for call in result.calls:
            if call.status != "llm_error":
                _say(f"  answer {call.attempt}: {call.latency_s:.2f} s, {call.prompt_tokens} prompt + "
                           f"{call.completion_tokens} completion tokens, ${call.cost:.5f}: {call.status}"
                           + (f" ({call.error.splitlines()[0][:120]})" if call.error else ""))
        if result.endpoint_error is not None:
            failed = True
            _say(f"  FAILED after {took:.1f} s: {result.endpoint_error}")
        elif result.proposal is None:
            _say(f"  the model answered but gave no usable edit: {result.reason}")
        else:
            diff = difflib.unified_diff(parent.source.splitlines(), result.proposal.source.splitlines(),
                                        seed.name, "edited", lineterm="", n=1)
            _say(f"  sample edit of {seed.name} applied ({result.proposal.note}):")
            for line in list(diff)[:30]:
                _say("    " + line)
    sys.exit(1 if failed else 0)


def _say(line: str) -> None:
    """One line of the check's report; the endpoint's text in it cannot act on the terminal or break the line."""
    echo(line, multiline=False)
