"""What the benchmarks share: strict JSON for figures that may be NaN."""

from __future__ import annotations

import math
from typing import Any


def no_nan(value: Any) -> Any:
    """NaN becomes null, so the JSON stays strict (``json.dumps`` would write a bare NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_nan(v) for v in value]
    return value
