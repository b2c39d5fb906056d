"""What a Ray actor runs on its node: one warm cascade evaluator, asked by the driver.

The actor is the node's counterpart of the local executor: it builds the program kind's
evaluator from the same cascade settings and suite the driver has, so candidates are
sandboxed (its warm sandbox workers are this process's children, on this node) and scored by
the trusted scorer here, exactly as they would be on the driver's machine. It is given no
database path and opens no file of the campaign: results go back to the driver, the one
writer.

One question needs the driver mid-evaluation: whether a candidate's behavioural fingerprint
is already known (``skip_if``), which only the campaign can answer. The actor is threaded, so
while ``evaluate`` runs, the driver collects the question with :meth:`EvaluationWorker.question`
and sends the answer with :meth:`EvaluationWorker.answer`; the evaluation waits for it.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading

from evosearch import kinds
from evosearch.envs.suites import Suite
from evosearch.evaluate import CascadeConfig, EvalResult
from evosearch.program import Program

log = logging.getLogger("evosearch.executor")

#: Longest wait for the driver's answer to a fingerprint question; past it the evaluation goes on
#: (training a twin wastes a slot, never a result). The driver answers in milliseconds.
ANSWER_TIMEOUT_S = 600.0
#: Calls one actor serves at once: an evaluation, its question and answer, a confirmation, and
#: the fingerprint probes a language model's proposals ask of any actor.
MAX_CONCURRENCY = 8


class _Exchange:
    """The one fingerprint question of one evaluation, and its answer."""

    def __init__(self) -> None:
        self.asked: queue.Queue[str | None] = queue.Queue()
        self.told: queue.Queue[bool] = queue.Queue()

    def ask(self, fingerprint: str) -> bool:
        self.asked.put(fingerprint)
        try:
            return self.told.get(timeout=ANSWER_TIMEOUT_S)
        except queue.Empty:
            log.warning("no answer from the driver about fingerprint %s; evaluating on", fingerprint)
            return False


class EvaluationWorker:
    """One evaluation slot on a Ray node: a warm evaluator for one program kind and suite."""

    def __init__(self, *, kind: str, cascade: CascadeConfig, suite: Suite) -> None:
        """Build the evaluator now: a node without the sandbox mode asked for fails here, before any program."""
        self.evaluator = kinds.get(kind).evaluator(cascade, suite)
        self._exchanges: dict[str, _Exchange] = {}
        self._lock = threading.Lock()

    def info(self) -> dict:
        """Where this slot runs and what it gives candidates: node, process, sandbox mode, versions."""
        import torch

        import evosearch

        try:
            import ray

            node_id, node_ip = ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
        except Exception:  # noqa: BLE001 - only a label; the class also runs outside Ray (tests)
            node_id, node_ip = "", ""
        return {"node_id": node_id, "node": node_ip, "hostname": socket.gethostname(), "pid": os.getpid(),
                "sandbox": self.evaluator.sandbox, "evosearch": evosearch.__version__, "torch": torch.__version__}

    def _exchange(self, ticket: str) -> _Exchange:
        with self._lock:
            return self._exchanges.setdefault(ticket, _Exchange())

    def evaluate(self, ticket: str, program: Program) -> EvalResult:
        """The cascade on ``program``; its fingerprint question goes to the driver under ``ticket``."""
        exchange = self._exchange(ticket)
        try:
            return self.evaluator.evaluate(program, skip_if=exchange.ask)
        finally:
            exchange.asked.put(None)  # a question still waiting learns that none will come

    def question(self, ticket: str) -> str | None:
        """The fingerprint evaluation ``ticket`` asks about; None once it ended without asking."""
        exchange = self._exchange(ticket)
        fingerprint = exchange.asked.get()
        if fingerprint is None:
            with self._lock:
                self._exchanges.pop(ticket, None)
        return fingerprint

    def answer(self, ticket: str, skip: bool) -> None:
        """The driver's answer: True ends the evaluation as a ``duplicate``."""
        exchange = self._exchange(ticket)
        exchange.told.put(skip)
        with self._lock:
            self._exchanges.pop(ticket, None)

    def confirm(self, program: Program, result: EvalResult) -> dict:
        """The confirmation record of an ``ok`` result, measured again on fresh seeds (``RuleEvaluator.confirm``)."""
        confirm = getattr(self.evaluator, "confirm", None)
        return confirm(program, result).confirmed if confirm is not None else {}

    def fingerprint(self, program: Program) -> str | None:
        """The behavioural fingerprint alone (the probe), for proposals not stored yet."""
        return self.evaluator.fingerprint(program)

    def shutdown(self) -> None:
        """Stop this node's warm sandbox workers before the actor goes (they would notice, a little later)."""
        from evosearch.sandbox.runner import shutdown

        shutdown()
