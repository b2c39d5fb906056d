"""The Ray executor: a campaign's evaluations on Ray actors, one actor per evaluation slot.

The driver (the process running the campaign) keeps everything that writes or decides: the
archive, the operators, the language models, the bandit. It hands each evaluation to an idle
slot's actor (:class:`~evosearch.executor.worker.EvaluationWorker`), which runs the cascade
on its node in the node's sandbox and sends back the :class:`EvalResult`; the campaign then
tells the archive, as it does with a local result. :class:`RayEvaluator` has the evaluator's
methods, so the campaign loop has one path for both executors.

Faults, and why they are handled here rather than by Ray's own retries: an actor that dies
mid-evaluation (its process killed, its node gone) leaves nothing behind on the driver, so
the evaluation is started again from the beginning on a fresh actor, at most
``max_retries`` times; the fingerprint it already claimed stays its own, so the second
attempt is not taken for its own twin. Past the limit the evaluation comes back as an
``infra_error``, which the campaign treats like any failure of the machinery (never a
score). A fresh actor that does not start within ``start_timeout_s`` means the cluster is
gone: :class:`~evosearch.executor.ExecutorLost`, and the campaign pauses with its programs
pending.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from evosearch.config import CampaignConfig, ExecutorConfig, resolved_suite
from evosearch.envs.suites import Suite, load_suite
from evosearch.evaluate import CascadeConfig, EvalResult, SkipIf
from evosearch.executor import ExecutorError, ExecutorLost, import_ray
from evosearch.executor.local import cascade_config
from evosearch.executor.worker import MAX_CONCURRENCY, EvaluationWorker
from evosearch.program import Program

log = logging.getLogger("evosearch.executor")

#: How long closing waits for the actors to stop their sandbox workers before it kills them.
CLOSE_GRACE_S = 10.0


@dataclass
class Slot:
    """One evaluation slot: its actor, where that runs, and what it evaluates now."""

    index: int
    handle: Any
    info: dict
    program: str | None = None
    since: float | None = None
    attempt: int = 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RayEvaluator:
    """Evaluates programs on a Ray cluster's actors; the campaign's evaluator when ``executor.kind`` is ray."""

    def __init__(self, *, settings: ExecutorConfig, kind: str, cascade: CascadeConfig, suite: Suite) -> None:
        """Connect (or start Ray here), start one actor per slot and wait until every one is ready.

        Raises :class:`ExecutorError` with what to do when Ray is missing, the cluster cannot be
        reached, or a slot's actor cannot start (a node without the sandbox mode asked for).
        """
        self._ray = ray = import_ray()
        from ray import exceptions

        #: What a dead or unreachable actor looks like to the driver.
        self._faults = (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.ObjectLostError,
                        exceptions.RaySystemError, ConnectionError)
        self.settings = settings
        self.address = settings.address or os.environ.get("RAY_ADDRESS") or "local"
        self._owns_ray = connect(ray, settings.address)
        self._worker = ray.remote(EvaluationWorker).options(
            num_cpus=settings.cpus_per_evaluation, num_gpus=settings.gpus_per_evaluation,
            max_concurrency=MAX_CONCURRENCY, max_restarts=0, max_task_retries=0)
        self._init_args = {"kind": kind, "cascade": cascade, "suite": suite}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._lost: str | None = None
        self._abandoned = False
        self._requeues: list[dict] = []
        self.requeued = 0
        self.cluster = self._cluster()
        self.slots = self._slot_count()
        self._slots = self._start(self.slots)
        self._free = list(self._slots)
        self._next_probe = 0
        self.sandbox = self._weakest_sandbox()
        self._warn_versions()

    @classmethod
    def for_campaign(cls, config: CampaignConfig) -> RayEvaluator:
        """The evaluator for ``config``: its cascade settings and its suite, loaded here and sent to the nodes.

        The suite travels as loaded (tasks, seeds, calibration), so a node scores against the
        driver's suite even where its file is elsewhere or missing.
        """
        return cls(settings=config.executor, kind=config.kind, cascade=cascade_config(config),
                   suite=load_suite(resolved_suite(config)))

    # -- starting ----------------------------------------------------------------------------------

    def _cluster(self) -> dict:
        """The cluster as it was at the start: nodes alive, CPUs and GPUs in all."""
        resources = self._ray.cluster_resources()
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        return {"nodes": len(nodes), "cpus": resources.get("CPU", 0.0), "gpus": resources.get("GPU", 0.0)}

    def _slot_count(self) -> int:
        """``max_in_flight``, or as many slots as the cluster's CPUs (and GPUs) fit."""
        s, cpus, gpus = self.settings, self.cluster["cpus"], self.cluster["gpus"]
        fits = math.floor(cpus / s.cpus_per_evaluation + 1e-9)
        if s.gpus_per_evaluation > 0:
            fits = min(fits, math.floor(gpus / s.gpus_per_evaluation + 1e-9))
        if s.max_in_flight is not None:
            if s.max_in_flight > fits:
                log.warning("executor.max_in_flight %d is more than the %d slots the cluster fits now (%g CPUs, "
                            "%g GPUs): the rest wait for nodes", s.max_in_flight, fits, cpus, gpus)
            return s.max_in_flight
        if fits < 1:
            raise ExecutorError(
                f"the Ray cluster at {self.address} has {cpus:g} CPUs and {gpus:g} GPUs: not one evaluation of "
                f"{s.cpus_per_evaluation:g} CPUs and {s.gpus_per_evaluation:g} GPUs fits (executor."
                "cpus_per_evaluation, executor.gpus_per_evaluation)")
        return fits

    def _start(self, count: int) -> list[Slot]:
        handles = [self._worker.remote(**self._init_args) for _ in range(count)]
        try:
            infos = self._ray.get([h.info.remote() for h in handles], timeout=self.settings.start_timeout_s)
        except self._ray.exceptions.GetTimeoutError as err:
            self._kill(handles)
            raise ExecutorError(
                f"the {count} evaluation workers did not all start within {self.settings.start_timeout_s:g} s on "
                f"the Ray cluster at {self.address} ({self.cluster['cpus']:g} CPUs, {self.cluster['gpus']:g} GPUs): "
                "lower executor.max_in_flight, or add nodes") from err
        except self._faults as err:
            self._kill(handles)
            raise ExecutorError(f"an evaluation worker could not start on the Ray cluster at {self.address}: "
                                f"{_last_line(err)}. Check the nodes with `evosearch doctor --ray-address "
                                f"{self.settings.address or 'auto'}`") from err
        return [Slot(i, h, info) for i, (h, info) in enumerate(zip(handles, infos, strict=True))]

    def _weakest_sandbox(self):
        """The weakest sandbox mode among the slots: what a candidate can count on."""
        modes = [slot.info["sandbox"] for slot in self._slots]
        return min(modes, key=lambda m: (m.strong, m.name == "bubblewrap"))

    def _warn_versions(self) -> None:
        import torch

        import evosearch

        here = (evosearch.__version__, torch.__version__)
        for slot in self._slots:
            there = (slot.info["evosearch"], slot.info["torch"])
            if there != here:
                log.warning("node %s runs evosearch %s with torch %s, this driver %s with %s: scores may differ",
                            slot.info["node"], *there, *here)

    # -- slots -------------------------------------------------------------------------------------

    def _acquire(self, program: Program, attempt: int) -> Slot:
        with self._idle:
            while not self._free:
                self._idle.wait()
            slot = self._free.pop(0)
            slot.program, slot.since, slot.attempt = program.name, time.time(), attempt + 1
            return slot

    def _release(self, slot: Slot) -> None:
        with self._idle:
            slot.program, slot.since, slot.attempt = None, None, 0
            self._free.append(slot)
            self._idle.notify()

    def _replace(self, slot: Slot) -> None:
        """Give ``slot`` a fresh actor; :class:`ExecutorLost` when none starts (the cluster is gone)."""
        if self._lost:
            raise ExecutorLost(self._lost)
        self._kill([slot.handle])
        handle = self._worker.remote(**self._init_args)
        try:
            info = self._ray.get(handle.info.remote(), timeout=self.settings.start_timeout_s)
        except self._ray.exceptions.GetTimeoutError:
            self._lose(f"no fresh evaluation worker started within {self.settings.start_timeout_s:g} s after one "
                       "died: the Ray cluster is gone or has no room left")
        except self._faults as err:
            self._lose(f"a fresh evaluation worker could not start: {_last_line(err)}")
        slot.handle, slot.info = handle, info

    def _lose(self, why: str) -> None:
        with self._lock:
            self._lost = self._lost or (f"the Ray cluster at {self.address} is unreachable: {why}. The campaign "
                                        "paused with its programs pending; run the same command again once the "
                                        "cluster is back (`ray status` shows it)")
        raise ExecutorLost(self._lost)

    def _kill(self, handles: list) -> None:
        for handle in handles:
            try:
                self._ray.kill(handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead, or the cluster is gone: nothing more to stop
                pass

    # -- the evaluator's methods -------------------------------------------------------------------

    def evaluate(self, program: Program, skip_if: SkipIf | None = None) -> EvalResult:
        """Run the cascade on a slot's actor; again on a fresh actor if that one dies, up to ``max_retries`` times."""
        claimed: list[str] = []  # the fingerprint this evaluation claimed: its own on a retry, not a twin's

        def ask(fingerprint: str) -> bool:
            if fingerprint in claimed:
                return False
            skip = bool(skip_if(fingerprint)) if skip_if is not None else False
            if not skip:
                claimed.append(fingerprint)
            return skip

        failures: list[str] = []
        for attempt in range(1 + self.settings.max_retries):
            if self._lost:
                raise ExecutorLost(self._lost)
            slot = self._acquire(program, attempt)
            try:
                return self._evaluate_on(slot, program, ask)
            except self._faults as err:
                if self._abandoned:
                    break
                failures.append(f"{slot.info['node']} (pid {slot.info['pid']}): {_last_line(err)}")
                self._note_requeue(program, slot, attempt, err)
                self._replace(slot)
            finally:
                self._release(slot)
        why = "abandoned" if self._abandoned else (
            f"the Ray worker evaluating it died {len(failures)} times, the retry limit (executor.max_retries "
            f"{self.settings.max_retries}); last on {failures[-1] if failures else '?'}")
        return EvalResult(outcome="infra_error", stage="smoke", fingerprint=claimed[0] if claimed else None,
                          error=why, output_tail="\n".join(failures)[-4000:])

    def _evaluate_on(self, slot: Slot, program: Program, ask: SkipIf) -> EvalResult:
        ray = self._ray
        ticket = uuid.uuid4().hex
        done = slot.handle.evaluate.remote(ticket, program)
        asked = slot.handle.question.remote(ticket)
        ready, _ = ray.wait([asked, done], num_returns=1)
        if asked in ready:
            fingerprint = ray.get(asked)
            if fingerprint is not None:
                slot.handle.answer.remote(ticket, ask(fingerprint))
        return ray.get(done)

    def _note_requeue(self, program: Program, slot: Slot, attempt: int, err: BaseException) -> None:
        record = {"program": program.name, "node": slot.info["node"], "pid": slot.info["pid"],
                  "attempt": attempt + 1, "error": _last_line(err)[:500], "at": _now(),
                  "retry": attempt < self.settings.max_retries}
        log.warning("the Ray worker (pid %s on %s) evaluating %s died (attempt %d): %s; %s", record["pid"],
                    record["node"], program.name, attempt + 1, record["error"],
                    "starting it again on a fresh one" if record["retry"] else "retry limit reached")
        with self._lock:
            self.requeued += 1
            self._requeues.append(record)

    def take_requeues(self) -> list[dict]:
        """The evaluations restarted since the last call (one record each), for the campaign's events."""
        with self._lock:
            taken, self._requeues = self._requeues, []
        return taken

    def confirm(self, program: Program, result: EvalResult) -> EvalResult:
        """Fill ``result.confirmed`` on a slot's actor (see ``RuleEvaluator.confirm``), retried like an evaluation."""
        if not result.ok:
            return result
        last = ""
        for attempt in range(1 + self.settings.max_retries):
            if self._lost:
                raise ExecutorLost(self._lost)
            slot = self._acquire(program, attempt)
            try:
                result.confirmed = self._ray.get(slot.handle.confirm.remote(program, result))
                return result
            except self._faults as err:
                if self._abandoned:
                    break
                last = _last_line(err)
                self._note_requeue(program, slot, attempt, err)
                self._replace(slot)
            finally:
                self._release(slot)
        result.confirmed = {"outcome": "infra_error", "error": f"the Ray worker confirming it died: {last}"}
        return result

    def fingerprint(self, program: Program) -> str | None:
        """The probe alone, on any slot's actor (they serve probes beside their evaluation); None if it fails."""
        if self._lost or self._abandoned:
            return None
        with self._lock:
            slot = self._slots[self._next_probe % len(self._slots)]
            self._next_probe += 1
        try:
            return self._ray.get(slot.handle.fingerprint.remote(program))
        except self._faults:
            return None

    # -- operations --------------------------------------------------------------------------------

    def describe(self) -> dict:
        """The executor for ``evosearch status``: where it runs, on which nodes, what is in flight."""
        with self._lock:
            slots = [(s.info, s.program, s.since, s.attempt) for s in self._slots]
            requeued = self.requeued
        nodes: dict[str, dict] = {}
        for info, _, _, _ in slots:
            node = nodes.setdefault(info["node"], {"node": info["node"], "hostname": info["hostname"], "slots": 0,
                                                   "sandbox": info["sandbox"].summary()})
            node["slots"] += 1
        in_flight = [{"program": program, "node": info["node"], "pid": info["pid"], "attempt": attempt,
                      "since": datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="seconds")}
                     for info, program, since, attempt in slots if program is not None]
        return {"kind": "ray", "address": self.address, "cluster": self.cluster, "slots": len(slots),
                "cpus_per_evaluation": self.settings.cpus_per_evaluation,
                "gpus_per_evaluation": self.settings.gpus_per_evaluation, "nodes": list(nodes.values()),
                "in_flight": in_flight, "requeued": requeued, "lost": self._lost}

    def pids(self) -> list[int]:
        """The slots' actor processes (on their nodes), in slot order."""
        with self._lock:
            return [int(s.info["pid"]) for s in self._slots]

    def abandon(self) -> None:
        """Stop every actor now (a second Ctrl-C): the evaluations in flight return at once, to be discarded."""
        self._abandoned = True
        with self._lock:
            handles = [s.handle for s in self._slots]
        self._kill(handles)

    def close(self) -> None:
        """Stop the actors (their sandbox workers first) and, if this evaluator started Ray, Ray itself."""
        with self._lock:
            handles = [s.handle for s in self._slots]
        if not self._lost and not self._abandoned:
            try:
                self._ray.get([h.shutdown.remote() for h in handles], timeout=CLOSE_GRACE_S)
            except Exception:  # noqa: BLE001 - a dead actor's workers already went with it
                pass
        self._kill(handles)
        if self._owns_ray:
            self._ray.shutdown()


def connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``; False when Ray was already started in this process.

    Without an address, the cluster ``RAY_ADDRESS`` names (``ray job submit`` sets it for the
    command it runs), else a fresh Ray instance in this process. A script or test that started
    Ray itself keeps its cluster: it is used, and left running.
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Actors' output stays in Ray's log files: on the driver's terminal it would tear the progress display.
    options: dict[str, Any] = {"configure_logging": False, "log_to_driver": False}
    try:
        if address is None:  # "local": a fresh instance, never the one a stale cluster file names
            ray.init(address="local", include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except Exception as err:  # noqa: BLE001 - Ray raises many kinds here; each means "cannot connect"
        raise ExecutorError(f"cannot connect to the Ray cluster at {address or 'local'}: {type(err).__name__}: "
                            f"{err}".strip()) from err
    return True


def _last_line(err: BaseException) -> str:
    """The telling line of a Ray error (they carry whole remote tracebacks)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
