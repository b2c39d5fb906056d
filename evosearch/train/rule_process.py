"""A rule that runs in another process: the trainer asks it for losses and gradients, as numbers.

Why a second process: the training loop, the weights it writes and the harness itself are
what the score measures, so they must be out of the candidate's reach. In one process no
check can prove that (``sys.modules``, frames, tracebacks and ``grad_fn`` chains all lead
back to the trainer). Here the candidate's code runs in a companion process
(:mod:`evosearch.sandbox.companion`) that receives the minibatch's fields as plain arrays,
with no graph behind them, and answers with the loss per seed and its gradient with respect
to the three fields that carry one (``logp``, ``value``, ``entropy``). The trainer applies
the chain rule itself: ``d loss / d theta = sum_i g_i * d field_i / d theta``, the same numbers
autograd computes in one process, so training is unchanged. What the candidate controls is
exactly what a loss controls, the per-sample gradient weights, and nothing else.

Every answer is read with its size known in advance (from the shapes the trainer sent), so a
hostile companion can only send wrong numbers, which the trainer checks like any loss's.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
import traceback
from collections.abc import Sequence
from typing import NoReturn

import numpy as np
import torch

from evosearch.train.rule import SAMPLE_FIELDS, Rule, RuleError, compute_advantages, gae, load_rule, per_seed_losses

#: The fields whose gradient reaches the networks; the others are constants of the minibatch.
GRAD_FIELDS = ("logp", "value", "entropy")
MAX_MESSAGE_BYTES = 4000
FLAGS_BYTES = 8  # the loss answer's flags, padded so the arrays after them stay aligned
_HEADER = struct.Struct(">I")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# -- framing --------------------------------------------------------------------------------------


def _send(sock: socket.socket, head: bytes, arrays: Sequence[np.ndarray] = ()) -> None:
    """One request: its header and arrays gathered by the kernel, not joined into a new buffer here."""
    buffers = [memoryview(head), *(memoryview(np.ascontiguousarray(a)).cast("B") for a in arrays)]
    while buffers:
        sent = sock.sendmsg(buffers)
        while buffers and sent >= buffers[0].nbytes:  # a large request goes in parts
            sent -= buffers[0].nbytes
            buffers.pop(0)
        if buffers and sent:
            buffers[0] = buffers[0][sent:]


def _request(header: dict) -> bytes:
    data = json.dumps(header).encode()
    return _HEADER.pack(len(data)) + data


def _recv_exactly(sock: socket.socket, size: int) -> bytearray | None:
    """``size`` bytes, or None if the peer closed the connection first."""
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return buf


# -- the trainer's side ---------------------------------------------------------------------------


class _RemoteLoss(torch.autograd.Function):
    """Per-seed losses from the rule's process, with the gradients it reported as their backward."""

    @staticmethod
    def forward(ctx, losses: torch.Tensor, logp: torch.Tensor, value: torch.Tensor, entropy: torch.Tensor,
                grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
        ctx.save_for_backward(*grads)
        return losses

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        scale = grad_out.view(-1, 1)
        return (None, *(g * scale.to(g.dtype) for g in ctx.saved_tensors), None)


class RemoteRule:
    """The trainer's handle on a rule loaded in the companion process; used where a :class:`Rule` is."""

    def __init__(self, sock: socket.socket, pid: int, source: str, filename: str = "<rule>", *,
                 minimal_builtins: bool = True) -> None:
        self.sock, self.pid = sock, pid
        self.use_vmap: bool | None = None
        reply = self._ask({"op": "load", "source": source, "filename": filename,
                           "minimal_builtins": minimal_builtins}, 1)
        self.has_advantages = bool(reply[0])

    # The harness and the probe call these two; a local Rule has the same pair.
    def losses(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        logp = fields["logp"]
        seeds, samples = logp.shape
        dtype = logp.dtype
        packed = torch.cat([*(fields[n].detach().reshape(-1) for n in SAMPLE_FIELDS), fields["progress"].reshape(-1)])
        arrays = [packed.to("cpu", dtype).numpy()]  # one copy off the device, one send
        itemsize = torch.finfo(dtype).bits // 8
        reply = self._ask({"op": "loss", "dtype": str(dtype).removeprefix("torch."), "seeds": seeds,
                           "samples": samples}, FLAGS_BYTES + 8 * seeds + 3 * seeds * samples * itemsize, arrays)
        flags = reply[0]
        self.use_vmap = bool(flags & 2)
        losses = torch.frombuffer(reply, dtype=torch.float64, offset=FLAGS_BYTES, count=seeds).to(logp.device)
        if not flags & 1:  # the loss does not depend on any field that carries a gradient
            return losses
        grads = torch.frombuffer(reply, dtype=dtype, offset=FLAGS_BYTES + 8 * seeds).view(3, seeds, samples)
        inputs = [fields[n] for n in GRAD_FIELDS]
        shaped = tuple(g.to(x.device).view_as(x) for g, x in zip(grads, inputs, strict=True))
        return _RemoteLoss.apply(losses.to(dtype), *inputs, shaped)

    def compute_advantages(self, rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
                           last_value: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
        if not self.has_advantages:
            return gae(rewards, values, dones, last_value, gamma, lam)
        dtype = rewards.dtype
        arrays = [x.detach().to("cpu", dtype).numpy() for x in (rewards, values, dones, last_value)]
        reply = self._ask({"op": "advantages", "dtype": str(dtype).removeprefix("torch."),
                           "shape": list(rewards.shape), "gamma": gamma, "lam": lam},
                          rewards.numel() * (torch.finfo(dtype).bits // 8), arrays)
        adv = torch.frombuffer(reply, dtype=dtype).view(rewards.shape).to(rewards.device)
        if not torch.isfinite(adv).all():
            raise RuleError("advantages(...) returned NaN or infinite values")
        return adv

    def close(self) -> None:
        """End the companion (end of file on its socket) and reap it, so its CPU time is counted."""
        self.sock.close()
        self._reap()

    def _reap(self, within_s: float = 1.0) -> int | None:
        """The companion's wait status once it has ended (None if it has not within ``within_s``)."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already
                return None
            if pid:
                return status
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)

    def _ask(self, header: dict, size: int, arrays: Sequence[np.ndarray] = ()) -> bytearray:
        """Send one request; the answer's ``size`` bytes after its status byte, or the rule's error raised."""
        try:
            _send(self.sock, _request(header), arrays)
            status = _recv_exactly(self.sock, 1)
            if status == b"K":
                reply = _recv_exactly(self.sock, size)
                if reply is not None:
                    return reply
            elif status in (b"E", b"M"):
                length = _recv_exactly(self.sock, 4)
                if length is not None and (n := _HEADER.unpack(length)[0]) <= MAX_MESSAGE_BYTES:
                    text = _recv_exactly(self.sock, n)
                    if text is not None:
                        message = text.decode("utf-8", "replace")
                        raise (MemoryError if status == b"M" else RuleError)(message)
            elif status is not None:
                raise RuleError("the rule's process broke the protocol (it wrote to its socket itself?)")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self._gone()

    def _gone(self) -> NoReturn:
        """The companion closed its end: end this job the way the companion ended."""
        self.sock.close()
        status = self._reap()
        if status is not None and os.WIFSIGNALED(status):
            # Killed (its CPU limit, the memory cgroup): this job ends the same way, so the host
            # classifies it as it would a one-process job.
            os.kill(os.getpid(), os.WTERMSIG(status))
            time.sleep(1)
        how = f"exit status {os.WEXITSTATUS(status)}" if status is not None else "it closed its connection"
        raise RuleError(f"the rule's process ended during training ({how}): did the program exit the process?")


# -- the companion's side -------------------------------------------------------------------------


def serve(sock: socket.socket) -> None:
    """Answer the trainer until it closes the socket: load, then losses and advantages on request."""
    rule: Rule | None = None
    while True:
        size = _recv_exactly(sock, 4)
        if size is None:
            return
        header = json.loads(bytes(_recv_exactly(sock, _HEADER.unpack(size)[0]) or b"{}"))
        where = {"load": "loading the rule", "loss": "loss(b)"}.get(header["op"], "advantages(...)")
        try:
            if header["op"] == "load":
                rule = load_rule(header["source"], header["filename"], minimal_builtins=header["minimal_builtins"])
                reply = bytes([rule.advantages is not None])
            elif header["op"] == "loss":
                reply = _loss_reply(rule, header, sock)
            else:
                reply = _advantages_reply(rule, header, sock)
        except BaseException as err:  # noqa: BLE001 - every failure of the rule goes back to the trainer
            if isinstance(err, (ConnectionError, EOFError)):
                return
            _print_traceback()
            message = str(err) if isinstance(err, RuleError) else f"{where} raised {type(err).__name__}: {err}"
            text = message.encode("utf-8", "replace")[:MAX_MESSAGE_BYTES]
            sock.sendall((b"M" if isinstance(err, MemoryError) else b"E") + _HEADER.pack(len(text)) + text)
        else:
            sock.sendall(b"K" + reply)


def _print_traceback() -> None:
    """Into the job's output, where the proposer reads the candidate's own traceback; it may be full."""
    try:
        traceback.print_exc()
    except BaseException:  # noqa: BLE001 - a full output file (the rule printed too much) loses the traceback only
        pass


def _arrays(sock: socket.socket, dtype: torch.dtype, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    itemsize = torch.finfo(dtype).bits // 8
    out = []
    for shape in shapes:
        data = _recv_exactly(sock, int(np.prod(shape)) * itemsize)
        if data is None:
            raise EOFError
        out.append(torch.frombuffer(data, dtype=dtype).view(shape) if data else torch.zeros(shape, dtype=dtype))
    return out


def _loss_reply(rule: Rule, header: dict, sock: socket.socket) -> bytes:
    seeds, samples, dtype = int(header["seeds"]), int(header["samples"]), _DTYPES[header["dtype"]]
    (packed,) = _arrays(sock, dtype, [(len(SAMPLE_FIELDS) * seeds * samples + seeds,)])
    fields = dict(zip(SAMPLE_FIELDS, packed[:-seeds].view(len(SAMPLE_FIELDS), seeds, samples), strict=True))
    fields["progress"] = packed[-seeds:]
    for name in GRAD_FIELDS:  # leaves with no history: nothing behind them leads to the trainer
        fields[name] = fields[name].detach().requires_grad_(True)
    leaves = [fields[n] for n in GRAD_FIELDS]
    losses = per_seed_losses(rule, fields)
    if not losses.dtype.is_floating_point:
        raise RuleError(f"loss(b) returned dtype {losses.dtype}, expected a floating-point tensor")
    flags = 2 if rule.use_vmap else 0
    grads = [torch.zeros(seeds, samples, dtype=dtype)] * 3
    if losses.requires_grad:
        flags |= 1
        found = torch.autograd.grad(losses.sum(), leaves, allow_unused=True)
        grads = [g.to(dtype) if g is not None else torch.zeros(seeds, samples, dtype=dtype) for g in found]
    return (bytes([flags]).ljust(FLAGS_BYTES, b"\0") + losses.detach().to(torch.float64).numpy().tobytes()
            + b"".join(g.detach().contiguous().numpy().tobytes() for g in grads))


def _advantages_reply(rule: Rule, header: dict, sock: socket.socket) -> bytes:
    shape, dtype = tuple(int(d) for d in header["shape"]), _DTYPES[header["dtype"]]
    rewards, values, dones, last_value = _arrays(sock, dtype, [shape, shape, shape, shape[1:]])
    adv = compute_advantages(rule, rewards, values, dones, last_value, float(header["gamma"]), float(header["lam"]))
    return adv.to(dtype).contiguous().numpy().tobytes()
