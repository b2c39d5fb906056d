"""A one-line description of this machine, recorded beside calibrations and benchmark figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    import torch

    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, torch {torch.__version__}"
