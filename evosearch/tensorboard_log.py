"""A campaign's progress as TensorBoard scalars: ``evosearch run CONFIG --tensorboard DIR``.

RL researchers watch runs in TensorBoard; this writes the numbers the progress panel shows
(best, QD score, coverage, evaluations per hour, outcome counts) as one point per evaluation,
so a campaign sits beside their other runs. The event files are written here, by hand, rather
than through the ``tensorboard`` package: the format is small and stable (TFRecord framing with
CRC-32C, an ``Event`` protobuf holding a ``Summary`` of ``simple_value`` scalars), and writing it
costs ~80 lines where the package would pull in protobuf, grpcio and a web server that nobody
needs to run a campaign. TensorBoard itself (or its ``EventAccumulator``) reads the files;
:func:`read_scalars` reads them back without it (the tests use both).

Each point is appended and the file closed again, so TensorBoard sees it at once and a campaign
killed at any moment leaves a readable file; at one point per evaluation the cost is nothing.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from evosearch.campaign import Progress

FILE_VERSION = b"brain.Event:2"


# -- CRC-32C (Castagnoli), as TFRecord frames use it -----------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotated and offset so a CRC of data holding CRCs stays well spread."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One TFRecord: length, CRC of the length, the bytes, CRC of the bytes (little-endian)."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc(length)) + record + struct.pack("<I", masked_crc(record))


# -- the protobuf messages (only the fields TensorBoard's scalars need) ----------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings and nested messages."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _scalar_value(tag: str, value: float) -> bytes:
    """``Summary.Value{tag = 1; simple_value = 2 (float, wire type 5)}``."""
    return _field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value)


def event(wall_time: float, step: int, *, scalars: dict[str, float] | None = None,
          file_version: bytes | None = None) -> bytes:
    """``Event{wall_time = 1 (double); step = 2; file_version = 3; summary = 5}`` with scalars as ``Summary.value``."""
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        out += _field(3, file_version)
    if scalars:
        out += _field(5, b"".join(_field(1, _scalar_value(tag, v)) for tag, v in scalars.items()))
    return out


# -- writing and reading -----------------------------------------------------------------------


class EventWriter:
    """Appends scalar events to one new ``events.out.tfevents.*`` file in ``log_dir``.

    The folder is made at once (so a path that cannot be written fails before a campaign
    starts); the file when the first point comes.
    """

    def __init__(self, log_dir: Path, clock: Callable[[], float] = time.time) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.path = log_dir / f"events.out.tfevents.{int(clock())}.{socket.gethostname()}.evosearch"
        self._started = False

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        records = [] if self._started else [event(self.clock(), 0, file_version=FILE_VERSION)]
        records.append(event(self.clock(), step, scalars=scalars))
        with self.path.open("ab") as f:
            f.write(b"".join(frame(r) for r in records))
        self._started = True


def _records(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        record = data[pos + 12:pos + 12 + length]
        if struct.unpack_from("<I", data, pos + 8)[0] != masked_crc(data[pos:pos + 8]) or \
                struct.unpack_from("<I", data, pos + 12 + length)[0] != masked_crc(record):
            raise ValueError(f"bad CRC in the record at byte {pos}")
        yield record
        pos += 16 + length


def _fields(message: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a protobuf message: varints as ints, the rest as bytes."""
    pos = 0
    while pos < len(message):
        key, pos = _read_varint(message, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(message, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = message[pos:pos + size], pos + size
        else:
            size, pos = _read_varint(message, pos)
            value, pos = message[pos:pos + size], pos + size
        yield number, wire, value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in an event file, by tag: (step, value) in file order; checks every CRC."""
    out: dict[str, list[tuple[int, float]]] = {}
    for record in _records(path.read_bytes()):
        fields = list(_fields(record))
        step = next((v for n, _, v in fields if n == 2), 0)
        for summary in (v for n, _, v in fields if n == 5):
            for _, _, value in _fields(summary):
                parts = {n: v for n, _, v in _fields(value)}
                out.setdefault(parts[1].decode(), []).append((step, struct.unpack("<f", parts[2])[0]))
    return out


# -- the campaign's progress -------------------------------------------------------------------


def progress_scalars(p: Progress) -> dict[str, float]:
    """The scalars of one progress snapshot, grouped by TensorBoard's tag prefixes (one chart section each)."""
    scalars = {"search/qd_score": p.qd_score, "search/coverage": p.coverage, "search/cells": float(p.cells),
               "rate/evaluations_per_hour": p.evals_per_hour, "rate/proposal_errors": float(p.proposal_errors)}
    if p.best is not None:
        scalars["search/best"] = p.best
    scalars.update({f"outcomes/{k}": float(v) for k, v in sorted(p.outcomes.items())})
    if p.llm_models:
        scalars["llm/spend_usd"] = p.llm_spend
    return scalars


class ProgressScalars:
    """A campaign ``on_progress`` callback that logs a point whenever the evaluation count moves.

    The campaign calls back on every tick of its loop; TensorBoard's x axis is the evaluation
    count, so one point per count is what a chart needs (a resumed campaign continues its steps).
    """

    def __init__(self, log_dir: Path) -> None:
        self.writer = EventWriter(log_dir)
        self._last: int | None = None

    def __call__(self, p: Progress) -> None:
        if p.evaluations != self._last:
            self._last = p.evaluations
            self.writer.add_scalars(p.evaluations, progress_scalars(p))


def with_scalars(view: Callable[[Progress], None], scalars: ProgressScalars | None) -> Callable[[Progress], None]:
    """The progress display, and the TensorBoard log when there is one, as one ``on_progress`` callback."""
    if scalars is None:
        return view

    def both(p: Progress) -> None:
        view(p)
        scalars(p)

    return both


__all__ = ["EventWriter", "ProgressScalars", "event", "frame", "progress_scalars", "read_scalars", "with_scalars"]
