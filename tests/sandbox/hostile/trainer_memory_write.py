"""Reach into the trainer's process from outside Python: its memory, its signals, its files.

Each door a rule's process might use to change the process that trains it is tried in turn:
``/proc/<parent>/mem`` for writing, ``process_vm_writev`` and ``ptrace`` through libc, a signal
to the parent, the weights file the trainer will write, a new socket. Every one must fail; the
error lists what each attempt got.
"""

import ctypes
import os
import signal
import socket

results = []


def _try(what, attempt):
    try:
        outcome = attempt()
    except Exception as err:  # noqa: BLE001
        outcome = f"{type(err).__name__}: {err}"
    results.append(f"{what}: {outcome}")


parent = os.getppid()
libc = ctypes.CDLL(None, use_errno=True)
_try("mem", lambda: os.open(f"/proc/{parent}/mem", os.O_RDWR))
_try("ptrace", lambda: (libc.ptrace(16, parent, 0, 0), ctypes.get_errno()))  # PTRACE_ATTACH
_try("process_vm_writev", lambda: (libc.process_vm_writev(parent, None, 0, None, 0, 0), ctypes.get_errno()))
_try("kill", lambda: os.kill(parent, signal.SIGSTOP))
_try("weights", lambda: open("weights.npz", "wb").write(b"forged"))
_try("socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
_try("fork", os.fork)
succeeded = [r for r in results if ": (0, 0)" in r or r.endswith(": None") or r.split(": ", 1)[1].isdigit()]
if succeeded:
    os.kill(parent, signal.SIGCONT)
raise RuntimeError(f"succeeded: {succeeded}; all: {results}")


def loss(b):
    return -(b.logp * b.adv).mean() + 0.5 * ((b.value - b.ret) ** 2).mean()
