"""Language models as operators of a campaign: which may be asked, what they are told, what it costs.

Each configured model is one :class:`LlmOperator` (bandit arm ``llm:<label>``), asked like
every operator; being slow, it is a :class:`~evosearch.propose.base.DeferredOperator`, so its
conversation runs beside the evaluations. They share an :class:`LlmDriver` that (1) lets a
model be asked only while it is up, under the in-flight limit and affordable, (2) builds a
request from the archive (parent, its feedback, inspirations), reserving the proposal's
worst-case cost so the cost cap holds even with calls in flight, and (3) takes a finished
proposal back: accounts its cost, rests a model whose endpoint failed, and hands over the
calls to store.

A :class:`ShareKeeper` decides, before the bandit draws, whether a proposal is the models' turn
or the offline operators': left to a bandit over a few models and ~8 offline operators, a model
would get ~1/9 of the draws until rewards accumulate, and someone who pays for a model expects
it to drive the search (as in OpenEvolve and ShinkaEvolve).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np

from evosearch.archive.store import Archive
from evosearch.config import CampaignConfig, LLMModelConfig, config_dir, llm_template_dir, resolved_suite
from evosearch.envs.suites import load_suite
from evosearch.propose.base import DeferredOperator, Parent, Proposal, ProposalError
from evosearch.propose.llm import LlmProposer, LlmRequest, LlmResult, worst_case_cost
from evosearch.propose.llm_client import LLMError
from evosearch.propose.prompts import Feedback

log = logging.getLogger("evosearch.campaign")

#: Endpoint errors that waiting will not fix: the model rests for the rest of the run.
PERMANENT = ("auth", "bad_request")


class LlmWork:
    """One proposal's conversation: run in a proposer thread, then settled on the campaign's thread."""

    def __init__(self, proposer: LlmProposer, request: LlmRequest) -> None:
        self.proposer, self.request = proposer, request
        self.result: LlmResult | None = None

    def __call__(self) -> Proposal:
        try:
            self.result = self.proposer.propose(self.request)
        except Exception as err:  # a bug in the proposer: its reservation must still be released
            self.result = LlmResult(request=self.request, proposal=None, reason=f"proposer crashed: {err}")
            raise
        if self.result.proposal is None:
            raise ProposalError(self.result.reason, blame=self.result.endpoint_error is None)
        return self.result.proposal


class LlmDriver:
    """What the models of one campaign share: availability, the cost cap, and the archive's feedback."""

    def __init__(self, config: CampaignConfig, archive: Archive, campaign_id: int, state: dict,
                 fingerprint_known: Callable[[str], bool], fingerprint: Callable[[str], str | None]) -> None:
        self.config = config.llm
        self.kind = config.kind
        self.archive, self.campaign_id, self.state = archive, campaign_id, state
        self.proposer = LlmProposer(config.llm, llm_template_dir(config.llm, config_dir(config)))
        self.models = {m.label: m for m in config.llm.models}
        self.suite = load_suite(resolved_suite(config))
        self.fingerprint_known = fingerprint_known
        self.fingerprint = fingerprint
        self.down: dict[str, tuple[float, str]] = {}  # label -> (until, reason)
        self.reserved = 0.0
        self.capped = False
        self.in_flight = 0
        state.setdefault("llm_cost", 0.0)
        state.setdefault("llm_conversations", 0)
        state.setdefault("llm_failures", 0)

    def operators(self) -> dict[str, LlmOperator]:
        """One operator per model, by arm name."""
        ops = [LlmOperator(self, label) for label in self.models]
        return {op.name: op for op in ops}

    def weights(self) -> dict[str, float]:
        return {LlmOperator.arm(m.label): m.weight for m in self.models.values()}

    # -- what may be asked -----------------------------------------------------------------------

    def available(self, label: str) -> bool:
        if self.capped or self.in_flight >= self.config.max_in_flight:
            return False
        return self.down.get(label, (0.0, ""))[0] <= time.monotonic()

    def may_come_back(self) -> bool:
        """Whether a model that cannot be asked now may be later (a call in flight, a finite rest)."""
        if self.capped:
            return False
        return self.in_flight > 0 or any(not math.isinf(until) for until, _ in self.down.values())

    # -- asking ----------------------------------------------------------------------------------

    def request(self, label: str, parent: Parent, mates: list[Parent], rng: random.Random) -> LlmRequest | None:
        """A request for ``label`` with its cost reserved; None (and LLM use ends) if the cap would be passed."""
        model = self.models[label]
        request = LlmRequest(
            model=model, kind=self.kind, parent=parent, feedback=self.feedback(parent.program_id),
            inspirations=[(m, self.feedback(m.program_id)) for m in mates], seed=rng.getrandbits(32),
            source_known=self._source_known, fingerprint_known=self.fingerprint_known,
            fingerprint=self.fingerprint)
        cap = self.config.cost_cap
        reserve = worst_case_cost(model, self.proposer.messages(request), self.config.max_attempts)
        if cap is not None and self.state["llm_cost"] + self.reserved + reserve > cap:
            if self.reserved == 0.0:  # nothing in flight can free budget: LLM use is over for this campaign
                self.capped = True
                log.warning("LLM cost cap $%.4f reached (spent $%.4f; the next proposal could cost up to $%.4f): "
                            "continuing with the offline operators", cap, self.state["llm_cost"], reserve)
            return None
        request.reserved = reserve
        self.reserved += reserve
        self.in_flight += 1
        return request

    # -- taking the answer back ------------------------------------------------------------------

    def take(self, request: LlmRequest, result: LlmResult) -> list[dict]:
        """Account for a finished proposal; return its calls as rows for ``llm_calls``."""
        self.in_flight -= 1
        self.reserved = max(0.0, self.reserved - request.reserved)
        self.state["llm_cost"] += result.cost
        self.state["llm_conversations"] += 1
        if result.endpoint_error is not None:
            self._rest(request.model, result.endpoint_error)
        if result.proposal is None:
            self.state["llm_failures"] += 1
            log.info("LLM proposal failed: %s", result.reason)
        conversation = self.state["llm_conversations"]
        return [{**asdict(call), "conversation": conversation, "parent_id": request.parent.program_id}
                for call in result.calls]

    def _rest(self, model: LLMModelConfig, err: LLMError) -> None:
        permanent = err.kind in PERMANENT
        until = math.inf if permanent else time.monotonic() + self.config.cooldown_s
        self.down[model.label] = (until, f"{err.kind}: {err.message}"[:200])
        others = [label for label in self.models if label != model.label and label not in self.down]
        log.warning("model %s is unavailable (%s): %s; %s", model.label, err.kind, err.message,
                    "resting it for the rest of this run" if permanent else f"resting it {self.config.cooldown_s:g} s",
                    )
        log.warning("the campaign continues with %s", ", ".join(others) if others else "the offline operators")

    def status(self) -> dict[str, str]:
        now = time.monotonic()
        status = {}
        for label in self.models:
            until, reason = self.down.get(label, (0.0, ""))
            if until > now:
                status[label] = "down for this run: " + reason if math.isinf(until) else \
                    f"resting {until - now:.0f} s: {reason}"
            else:
                status[label] = "ok"
        return status

    def _source_known(self, sha: str) -> bool:
        return self.archive.source_known(self.campaign_id, sha)  # thread-safe: its own short-lived connection

    # -- feedback from the archive ---------------------------------------------------------------

    def feedback(self, program_id: int | None) -> Feedback | None:
        """What the evaluator said about a program, as the prompt shows it."""
        row = self.archive.program(program_id) if program_id is not None else None
        if row is None or row["status"] != "done":
            return None
        metrics = json.loads(row["metrics"] or "{}")
        tasks = {k: v["normalized_mean"] for k, v in (metrics.get("tasks") or {}).items()}
        ci = (row["ci_low"], row["ci_high"]) if row["ci_low"] is not None else None
        return Feedback(outcome=row["outcome"] or "", stage=row["stage"] or "", score=row["score"], ci=ci,
                        error=row["error"] or "", output_tail=row["output_tail"] or "", task_scores=tasks,
                        curve_summary=Feedback.curve_summary_from(self._curves(program_id)))

    def _curves(self, program_id: int) -> dict[str, list[float]]:
        """Mean normalised learning curve per task over seeds."""
        per_task: dict[str, list[list[float]]] = {}
        for e in self.archive.evaluations(program_id):
            if e["held_out"] or not e["curve"] or e["task"] not in self.suite.calibration:
                continue
            per_task.setdefault(e["task"], []).append(json.loads(e["curve"]))
        curves = {}
        for task, runs in per_task.items():
            cal = self.suite.calibration[task]
            if len({len(r) for r in runs}) != 1 or cal.r_ref == cal.r_random:
                continue
            mean = np.mean(np.array(runs, dtype=float), axis=0)
            curves[task] = [float(x) for x in (mean - cal.r_random) / (cal.r_ref - cal.r_random)]
        return curves


class LlmOperator(DeferredOperator):
    """One model as an operator: its child is an edit of the parent, informed by inspirations and feedback."""

    arity = 1

    def __init__(self, driver: LlmDriver, label: str) -> None:
        self.driver, self.label = driver, label
        self.name = self.arm(label)

    @staticmethod
    def arm(label: str) -> str:
        return f"llm:{label}"

    def applies(self, parents: list[Parent]) -> bool:
        return len(parents) == 1 and self.driver.available(self.label)

    def prepare(self, parents: list[Parent], inspirations: list[Parent], rng: random.Random) -> LlmWork | None:
        parent = parents[0]
        mates = [m for m in inspirations if m.program_id != parent.program_id]
        request = self.driver.request(self.label, parent, mates, rng)
        return LlmWork(self.driver.proposer, request) if request is not None else None

    def settle(self, work: LlmWork, outcome: Proposal | ProposalError) -> None:
        result = work.result or LlmResult(request=work.request, proposal=None, reason=str(outcome))
        records = self.driver.take(work.request, result)
        if isinstance(outcome, Proposal):
            outcome.model, outcome.records = self.label, records
        else:
            outcome.records = records

    def may_come_back(self) -> bool:
        return self.driver.may_come_back()



class ShareKeeper:
    """Keeps the models' share of the proposals at ``llm.share``; the bandit chooses inside each group.

    Deterministic (no RNG draw, so a campaign's proposal sequence does not shift): a proposal is
    the models' turn while their count is below ``share`` times the proposals so far plus this
    one. When it is their turn but no model can be asked (all busy, resting or over the cost
    cap) an offline operator proposes instead, so the CPUs never wait for a model; the models
    then catch up as soon as one can be asked. The realised share is kept in the campaign state
    (``proposal_mix`` and ``llm_share``) for ``evosearch status``.
    """

    def __init__(self, share: float, state: dict) -> None:
        self.share = share
        self.state = state
        self.mix: dict[str, int] = state.setdefault("proposal_mix", {"llm": 0, "offline": 0})

    @staticmethod
    def is_llm(arm: str) -> bool:
        return arm.startswith("llm:")

    def narrow(self, allowed: list[str]) -> list[str]:
        """The arms the bandit may choose from for this proposal: the models' or the offline operators'."""
        models = [a for a in allowed if self.is_llm(a)]
        offline = [a for a in allowed if not self.is_llm(a)]
        if not models or not offline:
            return allowed
        return models if self.models_turn() else offline

    def models_turn(self) -> bool:
        total = self.mix["llm"] + self.mix["offline"]
        return self.mix["llm"] < self.share * (total + 1)

    def count(self, arm: str) -> None:
        """Record a proposal started by ``arm`` (a model's answer may still fail: it was asked)."""
        self.mix["llm" if self.is_llm(arm) else "offline"] += 1
        self.state["llm_share"] = self.realised()

    def realised(self) -> float | None:
        """The fraction of the proposals asked of the models so far; None before the first."""
        total = self.mix["llm"] + self.mix["offline"]
        return self.mix["llm"] / total if total else None
