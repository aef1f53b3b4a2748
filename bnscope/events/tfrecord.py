"""TFRecord framing, the container format of TensorBoard event files.

Each record is `uint64 length | uint32 masked_crc32c(length) | data |
uint32 masked_crc32c(data)`, little-endian. This module encodes and decodes
that framing without TensorFlow, using the C implementation of CRC32C from
`google-crc32c`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import google_crc32c

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


def _resync(buffer: bytes, offset: int) -> int:
    """Finds the next offset after `offset` where a valid header starts."""
    end = len(buffer) - _HEADER_SIZE
    position = offset + 1
    while position <= end:
        if _valid_header_at(buffer, position) is not None:
            return position
        position += 1
    return len(buffer)


def iter_records(buffer: bytes, report: FramingReport | None = None) -> Iterator[bytes]:
    """Yields the payload of every intact record in `buffer`.

    A record whose data CRC fails is skipped and counted. A corrupt length
    field is skipped by scanning forward to the next valid header, so one bad
    byte costs one record, not the rest of the file. An incomplete record at
    the end (a file still being written) ends iteration and sets
    `report.truncated_tail`.

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
        if length is None:
            report.corrupt_records += 1
            next_offset = _resync(buffer, offset)
            report.skipped_bytes += next_offset - offset
            offset = next_offset
            continue
        data_start = offset + _HEADER_SIZE
        data_end = data_start + length
        if data_end + _FOOTER_SIZE > size:
            report.truncated_tail = True
            return
        (data_crc,) = _FOOTER.unpack_from(buffer, data_end)
        data = buffer[data_start:data_end]
        offset = data_end + _FOOTER_SIZE
        if masked_crc32c(data) != data_crc:
            report.corrupt_records += 1
            report.skipped_bytes += length + _HEADER_SIZE + _FOOTER_SIZE
            continue
        report.records += 1
        yield data
