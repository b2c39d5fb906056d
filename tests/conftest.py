"""Shared fixtures: program sources, the tiny suite, and a check that jobs leave nothing behind."""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "programs" / "rules"
TINY_SUITE = str(ROOT / "tests" / "data" / "tiny.yaml")
BASELINES = ("reinforce", "a2c", "ppo_clip", "dpo")

os.environ.setdefault("OMP_NUM_THREADS", "1")
# Each test session gets its own scratch root, so the leftover check sees only its own jobs.
os.environ["EVOSEARCH_SCRATCH"] = tempfile.mkdtemp(prefix="evosearch-tests-")


def rule_source(name: str) -> str:
    return (RULES / f"{name}.py").read_text()


@pytest.fixture
def no_leftovers():
    """Assert a test leaves no scratch directory and no job process behind."""
    pattern = os.path.join(os.environ["EVOSEARCH_SCRATCH"], "evosearch-*")
    before = set(glob.glob(pattern))
    yield
    after = set(glob.glob(pattern))
    assert after <= before, f"scratch directories left behind: {sorted(after - before)}"
