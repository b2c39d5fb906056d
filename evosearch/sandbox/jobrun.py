"""Inside the confined child: run one handler and write its result where the host reads it.

The host trusts nothing written here (it parses ``result.json`` as plain data, bounded in
size), but a well-behaved job must always be able to say how it ended, even one that used up
its descriptors: a descriptor for the result is opened before the handler runs.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable


def _write(scratch: str, data: dict, reserved: list[int]) -> None:
    """Write the result; ``reserved`` holds a descriptor opened before the job ran, used once."""
    tmp = os.path.join(scratch, "result.json.tmp")
    try:
        f = os.fdopen(reserved.pop(), "w", encoding="utf-8") if reserved else open(tmp, "w", encoding="utf-8")
    except OSError:  # the candidate closed it
        f = open(tmp, "w", encoding="utf-8")
    with f:
        json.dump(data, f, allow_nan=False, default=float)
    os.replace(tmp, os.path.join(scratch, "result.json"))


def run(handler: Callable[[dict, str], dict], payload: dict, scratch: str,
        candidate_faults: tuple[type[BaseException], ...] | None = None) -> None:
    """Run ``handler`` and write ``result.json``; exit the process without running atexit hooks.

    ``candidate_faults``: for a handler that keeps the candidate's code out of its own process
    (it talks to a companion), the exception types by which it reports the candidate's faults.
    Any other exception then happened in the harness (an environment that would not build, a
    device that would not start) and the error says ``"fault": "harness"``, so that the host
    does not blame the program for the machine. Without it, no ``fault`` is given.
    """
    code = 0
    reserved = [os.open(os.path.join(scratch, "result.json.tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
    try:
        _write(scratch, {"status": "ok", "result": handler(payload, scratch)}, reserved)
    except BaseException as err:  # noqa: BLE001 - every failure is reported, SystemExit included
        code = 1
        tb = traceback.format_exc()
        error = {"type": type(err).__name__, "message": str(err)[:2000], "traceback": tb[-3000:]}
        if candidate_faults is not None:
            error["fault"] = "candidate" if isinstance(err, candidate_faults) else "harness"
        try:
            _write(scratch, {"status": "error", "error": error}, reserved)
        except BaseException:  # noqa: BLE001
            code = 3
    finally:
        flush_output()
    os._exit(code)


def flush_output() -> None:
    """Flush stdout and stderr before ``os._exit``; a full output file loses the rest, nothing more."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
