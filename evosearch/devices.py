"""Where training runs: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, resolved in the host process.

Resolved here, never in a sandbox worker: asking torch whether CUDA exists initialises the
driver, and a worker forks its jobs, which must not happen after CUDA is initialised (each
job initialises CUDA itself, after its fork). With ``cuda`` every parallel evaluation slot
trains on the GPU at once, so one GPU serves several candidates when one does not fill it;
with several GPUs, jobs go round-robin over them.

``auto`` puts a task on the GPU only where its environment runs there too (the torch-native
envs); an EnvPool task steps on CPU threads, and its small networks gain nothing from a GPU
that every step would have to round-trip to.
"""

from __future__ import annotations

import itertools
import re
import threading

CHOICES = ("auto", "cpu", "cuda")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceError(ValueError):
    """A device was asked for that this machine does not have, or is not a device name."""


def cuda_count() -> int:
    """Number of CUDA devices torch can use here (0 on a CPU-only build or machine)."""
    import torch

    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver install reads as no GPU, not as a crash
        return 0


def check(requested: str) -> str:
    """``requested`` if it names a device this machine has, else a DeviceError saying why."""
    if not DEVICE_PATTERN.match(requested or ""):
        raise DeviceError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")
    if requested.startswith("cuda"):
        count = cuda_count()
        if count == 0:
            raise DeviceError(f"device {requested!r} asked for, but torch sees no CUDA GPU here "
                              "(a CPU-only torch build, or no driver): use --device cpu or auto")
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= count:
            raise DeviceError(f"device {requested!r} asked for, but only {count} CUDA device(s) exist")
    return requested


class DevicePool:
    """Hands each training or scoring job its device; thread-safe (tasks train in parallel)."""

    def __init__(self, requested: str = "auto") -> None:
        self.requested = check(requested)
        if requested == "cpu" or (requested == "auto" and cuda_count() == 0):
            self.gpus: list[str] = []
        elif ":" in requested:
            self.gpus = [requested]
        else:
            self.gpus = [f"cuda:{i}" for i in range(cuda_count())]
        self._next = itertools.cycle(self.gpus or ["cpu"])
        self._lock = threading.Lock()

    def for_task(self, gpu_native: bool) -> str:
        """The device for one job: a GPU in turn, or ``cpu``.

        ``gpu_native``: the task's environment has a torch-native version it may use on a GPU;
        ``auto`` keeps the others (EnvPool) on CPU.
        """
        if not self.gpus or (self.requested == "auto" and not gpu_native):
            return "cpu"
        with self._lock:
            return next(self._next)

    def describe(self) -> str:
        if not self.gpus:
            return "cpu"
        return ", ".join(self.gpus) + (" (EnvPool tasks on cpu)" if self.requested == "auto" else "")
