"""TFRecord framing, the container format of TensorBoard event files.

Each record is `uint64 length | uint32 masked_crc32c(length) | data |
uint32 masked_crc32c(data)`, little-endian. This module encodes and decodes
that framing without TensorFlow, using the C implementation of CRC32C from
`google-crc32c`.

Damage is survived record by record: a bad record is skipped by scanning for
the next header whose length field passes its CRC. That scan is vectorized
(`_next_header`), so a megabyte of garbage or zeros costs milliseconds, not
the seconds a byte-by-byte search takes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import google_crc32c
import numpy as np

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_HEADER_SIZE = _HEADER.size  # 12
_FOOTER_SIZE = _FOOTER.size  # 4
_MASK_DELTA = 0xA282EAD8
# No single event bnscope or TensorBoard writes comes near this; a larger
# length field is treated as corruption rather than an allocation request.
MAX_RECORD_BYTES = 1 << 30


def masked_crc32c(data: bytes | memoryview) -> int:
    """Returns the masked CRC32C TFRecord stores next to each field."""
    crc = google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode_record(data: bytes) -> bytes:
    """Frames `data` as one TFRecord."""
    length = struct.pack("<Q", len(data))
    return b"".join(
        (
            length,
            _FOOTER.pack(masked_crc32c(length)),
            data,
            _FOOTER.pack(masked_crc32c(data)),
        )
    )


@dataclass
class FramingReport:
    """What `iter_records` had to skip while decoding one buffer."""

    records: int = 0
    corrupt_records: int = 0
    skipped_bytes: int = 0
    truncated_tail: bool = False


def _valid_header_at(buffer: bytes, offset: int) -> int | None:
    """Returns the record length if a header with a good CRC starts at `offset`."""
    if offset + _HEADER_SIZE > len(buffer):
        return None
    length, length_crc = _HEADER.unpack_from(buffer, offset)
    if length > MAX_RECORD_BYTES:
        return None
    if masked_crc32c(buffer[offset : offset + 8]) != length_crc:
        return None
    return length


# The scan looks at this many candidate offsets at a time: it starts small,
# because the next header is usually one record away, and doubles up to a cap
# that bounds its temporary arrays (about 40 bytes per offset) to under 1 MB.
_SCAN_FIRST = 1 << 12
_SCAN_MAX = 1 << 14
_crc_tables: tuple[int, np.ndarray] | None = None


def _length_crc_tables() -> tuple[int, np.ndarray]:
    """CRC32C of an 8-byte length field, by linearity: `crc(0) ^ T[k][byte k]`.

    CRC32C is affine over GF(2), so the CRC of 8 bytes is the CRC of 8 zero
    bytes XORed with one table entry per non-zero byte. Only the low four
    bytes are tabulated: a length up to `MAX_RECORD_BYTES` has zero high bytes.
    """
    global _crc_tables
    if _crc_tables is None:
        zero = google_crc32c.value(bytes(8))
        tables = np.empty((4, 256), dtype=np.uint32)
        for position in range(4):
            for value in range(256):
                field = bytearray(8)
                field[position] = value
                tables[position, value] = google_crc32c.value(bytes(field)) ^ zero
        _crc_tables = (zero, tables)
    return _crc_tables


def _scan_window(buffer: bytes, start: int, count: int) -> int | None:
    """The first of `count` offsets from `start` where a valid header starts."""
    window = np.frombuffer(buffer, dtype=np.uint8, count=count + 11, offset=start)
    zero = window == 0
    # A plausible length (< 2^32) has four zero high bytes: a cheap first filter.
    candidates = np.flatnonzero(
        zero[4 : count + 4]
        & zero[5 : count + 5]
        & zero[6 : count + 6]
        & zero[7 : count + 7]
    )
    if candidates.size == 0:
        return None
    crc_of_zero, tables = _length_crc_tables()
    low = [window[candidates + k] for k in range(4)]
    crc = np.full(candidates.size, crc_of_zero, dtype=np.uint32)
    length = np.zeros(candidates.size, dtype=np.uint32)
    for k, byte in enumerate(low):
        crc ^= tables[k][byte]
        length |= byte.astype(np.uint32) << np.uint32(8 * k)
    masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_MASK_DELTA)
    stored = np.zeros(candidates.size, dtype=np.uint32)
    for k in range(4):
        stored |= window[candidates + 8 + k].astype(np.uint32) << np.uint32(8 * k)
    hits = candidates[(masked == stored) & (length <= MAX_RECORD_BYTES)]
    return int(hits[0]) + start if hits.size else None


def _next_header(buffer: bytes, offset: int) -> int:
    """The first offset after `offset` where a valid header starts, or the end."""
    last = len(buffer) - _HEADER_SIZE  # the last offset a header fits at
    position = offset + 1
    count = _SCAN_FIRST
    while position <= last:
        count = min(count, last - position + 1)
        found = _scan_window(buffer, position, count)
        if found is None:
            position += count
            count = min(2 * count, _SCAN_MAX)
        elif _valid_header_at(buffer, found) is not None:
            return found  # the vectorized check agrees with the scalar one
        else:  # cannot happen unless the two disagree: scan on past it
            position = found + 1
    return len(buffer)


def iter_records(buffer: bytes, report: FramingReport | None = None) -> Iterator[bytes]:
    """Yields the payload of every intact record in `buffer`.

    A record whose header or data fails its CRC is skipped and counted, and
    reading resumes at the next valid header, wherever bytes were inserted or
    deleted: one bad byte costs one record, not the rest of the file. A
    record that runs past the end of the buffer ends iteration and sets
    `report.truncated_tail` (a file still being written), unless a valid header
    follows it: then its length was damaged, and it is counted corrupt.

    Args:
        buffer: The bytes of one event file.
        report: Optional `FramingReport` updated with what was skipped.
    """
    report = report if report is not None else FramingReport()
    offset = 0
    size = len(buffer)
    while offset < size:
        if offset + _HEADER_SIZE > size:
            report.truncated_tail = True
            return
        length = _valid_header_at(buffer, offset)
        next_offset = None
        if length is not None:
            data_end = offset + _HEADER_SIZE + length
            if data_end + _FOOTER_SIZE <= size:
                data = buffer[offset + _HEADER_SIZE : data_end]
                (data_crc,) = _FOOTER.unpack_from(buffer, data_end)
                if masked_crc32c(data) == data_crc:
                    offset = data_end + _FOOTER_SIZE
                    report.records += 1
                    yield data
                    continue
            else:
                next_offset = _next_header(buffer, offset)
                if next_offset == size:
                    report.truncated_tail = True
                    return
        report.corrupt_records += 1
        if next_offset is None:
            next_offset = _next_header(buffer, offset)
        report.skipped_bytes += next_offset - offset
        offset = next_offset
