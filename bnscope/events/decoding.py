"""Decoding scalar summaries in bulk, from the protobuf wire format.

Consecutive events of one bnscope run almost always carry the same tags in the
same order. `bnscope.analysis.reader` parses the first event of each tag layout with
protobuf and builds a `SummaryTemplate` from it: the `Summary` bytes with the
float payloads masked out. A later event whose bytes match the template
everywhere but at those payloads contributes its values through one byte
comparison and one numpy gather, without a proto parse. This module holds
just enough of the wire format to do that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SummaryTemplate:
    """The bytes of a fast layout's `Summary`, with its float values masked out.

    Two summaries whose bytes agree everywhere except at `simple_value`
    payloads hold the same tags in the same order, so a later event is
    decoded by one byte comparison and one gather, without a proto parse.
    """

    layout: Any  # the reader's layout this template decodes
    float_index: np.ndarray  # byte offsets of the float32 payloads, 4 per value
    masked: bytes  # the summary bytes with those offsets zeroed

    def values(self, raw: np.ndarray) -> np.ndarray | None:
        masked = raw.copy()
        masked[self.float_index] = 0
        if masked.tobytes() != self.masked:
            return None
        return raw[self.float_index].view("<f4")


def varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def event_summary_span(record: bytes) -> tuple[int, int, int] | None:
    """`(step, start, end)` of the `summary` field of an `Event` record."""
    position, size = 0, len(record)
    step, start, end = 0, -1, -1
    try:
        while position < size:
            key, position = varint(record, position)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, position = varint(record, position)
                if number == 2:  # step, int64
                    step = value - (1 << 64) if value >= 1 << 63 else value
            elif wire == 1:
                position += 8
            elif wire == 5:
                position += 4
            elif wire == 2:
                length, position = varint(record, position)
                if number == 5:  # summary
                    start, end = position, position + length
                position += length
            else:
                return None
    except (IndexError, ValueError):
        return None
    if start < 0 or end > size:
        return None
    return step, start, end


def float_offsets(summary: bytes) -> list[int] | None:
    """Offsets of each `Value.simple_value` payload; `None` if any value has more."""
    offsets: list[int] = []
    position = 0
    try:
        while position < len(summary):
            key, position = varint(summary, position)
            if key != 0x0A:  # Summary.value, length-delimited
                return None
            length, position = varint(summary, position)
            end, inner, found = position + length, position, None
            while inner < end:
                key, inner = varint(summary, inner)
                if key == 0x0A:  # Value.tag
                    size, inner = varint(summary, inner)
                    inner += size
                elif key == 0x15:  # Value.simple_value, fixed32
                    found, inner = inner, inner + 4
                else:
                    return None
            if found is None:
                return None
            offsets.append(found)
            position = end
    except (IndexError, ValueError):
        return None
    return offsets


def summary_template(
    layout: Any, summary: bytes, value_count: int
) -> SummaryTemplate | None:
    """A template of `summary`, or `None` if it is not `value_count` plain scalars."""
    offsets = float_offsets(summary)
    if offsets is None or len(offsets) != value_count:
        return None
    float_index = (np.asarray(offsets)[:, None] + np.arange(4)).ravel()
    masked = np.frombuffer(summary, dtype=np.uint8).copy()
    masked[float_index] = 0
    return SummaryTemplate(layout, float_index, masked.tobytes())
