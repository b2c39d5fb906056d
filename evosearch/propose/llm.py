"""The LLM proposer: ask a model for one edit, send its mistakes back, check novelty before evaluation.

One proposal is a short conversation with one model. The prompt holds the contract, the
parent with its evaluation feedback and inspirations from other cells; the answer must apply
(SEARCH/REPLACE inside the EVOLVE-BLOCK, or a fenced rewrite) and pass the static check, and
the child must be new, by source and by behavioural fingerprint. Each failure goes back to
the model as the next user message, up to ``max_attempts`` answers. An endpoint that fails
(down, wrong key, garbage after retries) ends the proposal with the error, so the campaign
can rest that model and carry on with the others.

This runs in a worker thread and never touches the database: it gets what it needs in an
:class:`LlmRequest` and returns every call it made in an :class:`LlmResult` for the campaign
to store.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evosearch.config import LLMConfig, LLMModelConfig
from evosearch.program import Program
from evosearch.propose.base import Parent, Proposal
from evosearch.propose.llm_client import ChatClient, ChatResult, LLMError
from evosearch.propose.llm_edits import EditError, apply_response_detailed
from evosearch.propose.prompts import DUPLICATE_ERROR, Feedback, build_messages, retry_message

CHARS_PER_TOKEN = 3  # a conservative estimate of prompt size, for the cost reservation before a call


@dataclass
class CallRecord:
    """One HTTP call and what became of its answer (a row of ``llm_calls``)."""

    model: str
    base_url: str
    attempt: int
    status: str  # ok | edit_error | duplicate | llm_error
    messages: list[dict]
    response: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float | None = None
    error: str = ""


@dataclass
class LlmRequest:
    """Everything one proposal needs, gathered by the campaign's main thread."""

    model: LLMModelConfig
    kind: str
    parent: Parent
    feedback: Feedback | None
    inspirations: list[tuple[Parent, Feedback | None]]
    seed: int  # varies the prompt's wording; drawn from the campaign's RNG
    source_known: Callable[[str], bool]  # sha256 of a source -> already in the archive
    fingerprint_known: Callable[[str], bool]  # behaviour already in the archive
    fingerprint: Callable[[str], str | None]  # runs the smoke probe in the sandbox; None if it fails
    reserved: float = 0.0  # USD set aside for this proposal by the cost cap


@dataclass
class LlmResult:
    request: LlmRequest
    proposal: Proposal | None
    calls: list[CallRecord] = field(default_factory=list)
    endpoint_error: LLMError | None = None
    reason: str = ""

    @property
    def cost(self) -> float:
        return sum(c.cost for c in self.calls)


def call_cost(model: LLMModelConfig, prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * model.price_in_per_1k + completion_tokens * model.price_out_per_1k) / 1000.0


def worst_case_cost(model: LLMModelConfig, messages: list[dict], attempts: int) -> float:
    """An upper bound on a proposal's cost, reserved before the first call so a cap cannot be passed.

    Each retry re-sends the conversation with the previous answer and the error added, so the
    prompt grows by at most one answer (``max_tokens``) plus the error message per attempt.
    """
    prompt = sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN
    total = 0.0
    for attempt in range(attempts):
        total += call_cost(model, int(prompt + attempt * (model.max_tokens + 1000)), model.max_tokens)
    return total


class LlmProposer:
    """Holds one client per configured model; ``propose`` is safe to call from several threads."""

    def __init__(self, config: LLMConfig, template_dir: Path | None = None) -> None:
        self.config = config
        self.template_dir = template_dir
        self.models = {m.label: m for m in config.models}
        self.clients = {m.label: client_for(m) for m in config.models}

    def messages(self, request: LlmRequest) -> list[dict]:
        return build_messages(kind=request.kind, parent=request.parent, feedback=request.feedback,
                              inspirations=request.inspirations, rng=random.Random(request.seed),
                              template_dir=self.template_dir, edit_format=self.config.edit_format,
                              max_inspirations=len(request.inspirations))

    def propose(self, request: LlmRequest) -> LlmResult:
        model = request.model
        client = self.clients[model.label]
        messages = self.messages(request)
        result = LlmResult(request=request, proposal=None)
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            record = CallRecord(model=model.label, base_url=model.base_url, attempt=attempt, status="ok",
                                messages=list(messages))
            result.calls.append(record)
            try:
                answer = client.chat(messages, temperature=model.temperature, top_p=model.top_p,
                                     max_tokens=model.max_tokens)
            except LLMError as err:
                record.status, record.error = "llm_error", str(err)
                result.endpoint_error, result.reason = err, f"{model.label}: {err}"
                return result
            self._account(record, model, answer)
            outcome = self._check(request, record, answer.text)
            if isinstance(outcome, Proposal):
                result.proposal = outcome
                return result
            problem = record.error = outcome
            messages = messages + [{"role": "assistant", "content": answer.text},
                                   retry_message(problem, attempt, attempts, rng=random.Random(request.seed + attempt),
                                                 template_dir=self.template_dir)]
        result.reason = f"{model.label}: no usable edit in {attempts} answers (last: {result.calls[-1].error[:200]})"
        return result

    @staticmethod
    def _account(record: CallRecord, model: LLMModelConfig, answer: ChatResult) -> None:
        record.response = answer.text
        record.prompt_tokens, record.completion_tokens = answer.prompt_tokens, answer.completion_tokens
        record.cost = call_cost(model, answer.prompt_tokens, answer.completion_tokens)
        record.latency_s = answer.latency_s

    def _check(self, request: LlmRequest, record: CallRecord, text: str) -> Proposal | str:
        """Turn the answer into a child: the proposal, or the problem to send back to the model."""
        try:
            applied = apply_response_detailed(request.parent.source, text, request.kind)
        except EditError as err:
            record.status = "edit_error"
            return str(err)
        if request.source_known(Program(applied.child).sha):
            record.status = "duplicate"
            return DUPLICATE_ERROR
        fingerprint = request.fingerprint(applied.child)
        if fingerprint is not None and request.fingerprint_known(fingerprint):
            record.status = "duplicate"
            return DUPLICATE_ERROR
        parent_ids = (request.parent.program_id,) if request.parent.program_id is not None else ()
        note = f"{record.model} {applied.mode}" + (f": {applied.note}" if applied.note else "")
        return Proposal(source=applied.child, operator="llm", parent_ids=parent_ids, note=note[:500],
                        meta={"model": record.model, "mode": applied.mode})


def client_for(model: LLMModelConfig) -> ChatClient:
    """The model's client, with secrets read from the environment now (a config never holds them)."""
    key = os.environ.get(model.api_key_env) if model.api_key_env else None
    secret_vars = [model.api_key_env] if model.api_key_env else []
    secret_vars += list(model.header_env.values())
    source = " or ".join(f"${v}" for v in secret_vars) or "the model's api_key_env setting (none is set)"
    return ChatClient(model.base_url, model.model, api_key=key, timeout_s=model.timeout_s,
                      max_retries=model.max_retries, key_source=source, extra_headers=request_headers(model),
                      max_tokens_param=model.max_tokens_param)


def request_headers(model: LLMModelConfig) -> dict[str, str]:
    """The model's extra headers: those given as is, and those whose value an environment variable holds.

    A variable unset since the config was checked sends no header, so the server's 401 (which names
    the variable) says what is missing instead of an empty value.
    """
    from_env = {name: os.environ[var] for name, var in model.header_env.items() if os.environ.get(var)}
    return {**model.headers, **from_env}
