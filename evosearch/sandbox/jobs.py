"""The jobs a sandboxed process can run. Imported by the forkserver, so torch loads once.

``probe`` and ``train`` run candidate code. ``score`` and ``random`` never do: they are
the trusted side of DESIGN §5.6, reading only a plain ``.npz`` of weights. ``selfcheck``
tries what a hostile program would, for ``evosearch doctor``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np
import torch

from evosearch.train import harness, probe, rule, score  # noqa: F401  (warm imports)

torch.set_num_threads(1)


def _probe(payload: dict, scratch: str) -> dict:
    loaded = rule.load_rule(payload["source"], payload.get("filename", "<rule>"))
    return probe.probe(loaded)


def _train(payload: dict, scratch: str) -> dict:
    loaded = rule.load_rule(payload["source"], payload.get("filename", "<rule>"))
    cfg = harness.TrainConfig(**payload["config"])
    result = harness.train(loaded, cfg, [int(s) for s in payload["seeds"]], device=payload.get("device", "cpu"))
    np.savez(os.path.join(scratch, "weights.npz"), **result.weights)
    return {
        "curve_steps": result.curve_steps,
        "curves": result.curves,
        "env_steps": result.env_steps,
        "wall_s": result.wall_s,
        "used_vmap": result.used_vmap,
        "backend": result.backend,
        "device": result.device,
    }


def _score(payload: dict, scratch: str) -> dict:
    weights = score.load_weights(payload["weights"])
    returns = score.score_weights(weights, payload["env_id"], int(payload["episodes"]), int(payload["seed"]),
                                  backend=payload.get("backend", "auto"), device=payload.get("device", "cpu"))
    return {"returns": [float(r) for r in returns]}


def _random(payload: dict, scratch: str) -> dict:
    returns = score.random_returns(payload["env_id"], int(payload["episodes"]), int(payload["seed"]),
                                   backend=payload.get("backend", "auto"))
    return {"returns": [float(r) for r in returns]}


def _policy(payload: dict, scratch: str) -> dict:
    """Answer the referee's observation batches with the candidate's ``act`` (evosearch.referee)."""
    from evosearch import referee

    act = referee.load_policy(payload["source"], payload.get("filename", "<policy>"))
    return {"batches": referee.serve(act, int(payload["obs_dim"]))}


def _attempt(action) -> str:
    """``allowed`` or ``blocked (<why>)`` for one thing a hostile program would try."""
    try:
        action()
    except OSError as err:
        return f"blocked ({err.strerror or type(err).__name__})"
    return "allowed"


def _selfcheck(payload: dict, scratch: str) -> dict:
    """What a job can do to its host, tried from inside one (``evosearch doctor`` shows it).

    Only harmless probes: signal 0 checks permission without sending anything, and a file this
    creates outside the scratch directory is removed at once.
    """
    import socket

    def outside_write() -> None:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            f".evosearch-doctor-{os.getpid()}")
        with open(path, "w", encoding="utf-8"):
            pass
        os.unlink(path)

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    with open("/proc/self/status", encoding="ascii") as f:
        caps = dict(line.split(":\t", 1) for line in f if line.startswith("Cap")).get("CapEff", "?").strip()
    return {
        "uid": os.getuid(),
        "capabilities (CapEff)": caps,
        "write the evosearch package": _attempt(outside_write),
        "fork a process": _attempt(fork),
        "open an internet socket": _attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
        "signal the worker": _attempt(lambda: os.kill(os.getppid(), 0)),
        "open the worker's reply pipe": _attempt(lambda: open(f"/proc/{os.getppid()}/fd/1", "wb").close()),
        "environment variables": sorted(os.environ),
    }


JOBS = {"probe": _probe, "train": _train, "score": _score, "random": _random, "policy": _policy,
        "selfcheck": _selfcheck}


def _write(scratch: str, data: dict, reserved: list[int]) -> None:
    """Write the result; ``reserved`` holds a descriptor opened before the job ran, used once.

    A job that used up its descriptors can then still report why it failed.
    """
    tmp = os.path.join(scratch, "result.json.tmp")
    try:
        f = os.fdopen(reserved.pop(), "w", encoding="utf-8") if reserved else open(tmp, "w", encoding="utf-8")
    except OSError:  # the candidate closed it
        f = open(tmp, "w", encoding="utf-8")
    with f:
        json.dump(data, f, allow_nan=False, default=float)
    os.replace(tmp, os.path.join(scratch, "result.json"))


def run(job: str, payload: dict, scratch: str) -> None:
    """Run one job and write ``result.json``; exit the process without running atexit hooks."""
    code = 0
    reserved = [os.open(os.path.join(scratch, "result.json.tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
    try:
        _write(scratch, {"status": "ok", "result": JOBS[job](payload, scratch)}, reserved)
    except BaseException as err:  # noqa: BLE001 - every failure is reported, SystemExit included
        code = 1
        tb = traceback.format_exc()
        try:
            _write(scratch, {"status": "error", "error": {
                "type": type(err).__name__, "message": str(err)[:2000], "traceback": tb[-3000:],
            }}, reserved)
        except BaseException:  # noqa: BLE001
            code = 3
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
    os._exit(code)
