"""Process boundary for untrusted programs: one job, one confined process, a wall-clock kill.

See :mod:`evosearch.sandbox.modes` for the layers and ``evosearch doctor`` for what is in force.
"""

from evosearch.sandbox.job import Job
from evosearch.sandbox.modes import Mode, SandboxUnavailable
from evosearch.sandbox.runner import (
    JobOutcome,
    Limits,
    configure,
    current_mode,
    ensure,
    requested_for,
    run_job,
    shutdown,
)

__all__ = ["Job", "JobOutcome", "Limits", "Mode", "SandboxUnavailable", "configure", "current_mode", "ensure",
           "requested_for", "run_job", "shutdown"]
