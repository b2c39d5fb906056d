"""What the sandbox runs: a job names its catalogue (a module the worker preloads) and carries a payload.

The sandbox is the mechanism only; what jobs exist is the business of the package that defines
them (the evaluator's catalogue is ``evosearch.evaluate.jobs``). A catalogue module has a
``JOBS`` mapping from a job's ``name`` to a handler ``(payload: dict, scratch: str) -> dict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Job:
    """One request to a sandboxed process. Subclasses are frozen dataclasses whose fields are the payload."""

    catalogue: ClassVar[str]  # the module the worker imports before forking, and finds ``JOBS`` in
    name: ClassVar[str]  # the key of the handler in that module's ``JOBS``

    def payload(self) -> dict[str, Any]:
        """The JSON-serialisable arguments the handler receives."""
        raise NotImplementedError
