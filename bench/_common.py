"""What the benchmarks share: strict JSON for figures that may be NaN, and median timings."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def median_seconds(call: Callable[[], T], reps: int) -> tuple[float, float, T]:
    """Median wall and CPU seconds of ``reps`` calls after one untimed call (imports, caches), and its result.

    CPU seconds of this process move less than wall seconds when other work shares the cores.
    """
    result = call()
    walls, cpus = [], []
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def no_nan(value: Any) -> Any:
    """NaN becomes null, so the JSON stays strict (``json.dumps`` would write a bare NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_nan(v) for v in value]
    return value
