"""Process boundary for untrusted programs: one job, one process, limits, a wall-clock kill."""

from evosearch.sandbox.runner import JobOutcome, Limits, run_job

__all__ = ["JobOutcome", "Limits", "run_job"]
