"""TFRecord framing: what TensorFlow writes, and damage costing one record."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bnscope.events.tfrecord import (
    MAX_RECORD_BYTES,
    FramingReport,
    encode_record,
    iter_records,
    masked_crc32c,
)

PAYLOADS = [b"first", b"", b"x" * 1000, bytes(range(256))]


def test_framing_is_byte_identical_to_tensorflows(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "records.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for payload in PAYLOADS:
            writer.write(payload)
    with open(path, "rb") as file:
        assert file.read() == b"".join(encode_record(p) for p in PAYLOADS)


def test_round_trip():
    buffer = b"".join(encode_record(p) for p in PAYLOADS)
    report = FramingReport()
    assert list(iter_records(buffer, report)) == PAYLOADS
    assert report == FramingReport(records=4)


def test_bad_data_crc_skips_that_record_only():
    records = [encode_record(p) for p in PAYLOADS]
    damaged = bytearray(records[2])
    damaged[20] ^= 0xFF
    report = FramingReport()
    found = list(
        iter_records(
            b"".join([records[0], records[1], bytes(damaged), records[3]]), report
        )
    )
    assert found == [PAYLOADS[0], PAYLOADS[1], PAYLOADS[3]]
    assert report.corrupt_records == 1


def test_bad_length_resyncs_at_the_next_header():
    records = [encode_record(p) for p in PAYLOADS]
    damaged = bytearray(records[0])
    damaged[0] ^= 0x01  # the length no longer matches its CRC
    report = FramingReport()
    found = list(iter_records(bytes(damaged) + b"".join(records[1:]), report))
    assert found == PAYLOADS[1:]
    assert report.corrupt_records == 1 and report.skipped_bytes == len(records[0])


def test_truncated_tail_ends_iteration():
    buffer = b"".join(encode_record(p) for p in PAYLOADS)
    report = FramingReport()
    assert list(iter_records(buffer[:-3], report)) == PAYLOADS[:3]
    assert report.truncated_tail


def test_oversized_length_is_not_an_allocation():
    length = struct.pack("<Q", MAX_RECORD_BYTES + 1)
    header = length + struct.pack("<I", masked_crc32c(length))
    report = FramingReport()
    found = list(iter_records(header + encode_record(b"after"), report))
    assert found == [b"after"] and report.corrupt_records == 1


def _header(length: int) -> bytes:
    """A header whose length field passes its CRC."""
    field = struct.pack("<Q", length)
    return field + struct.pack("<I", masked_crc32c(field))


def test_valid_crc_length_past_the_end_mid_file_is_corrupt_not_a_tail():
    """Issue 14: a 2^29 length with a valid CRC mid-file ended the read.

    Before the fix this yielded 2 of 6 records and set `truncated_tail`
    (seen failing).
    """
    records = [encode_record(b"payload %d" % i) for i in range(6)]
    damaged = b"".join(records[:2]) + _header(1 << 29) + b"".join(records[3:])
    report = FramingReport()
    found = list(iter_records(damaged, report))
    assert found == [b"payload %d" % i for i in (0, 1, 3, 4, 5)]
    assert report.corrupt_records == 1 and not report.truncated_tail
    assert report.skipped_bytes == 12


def test_a_record_running_past_the_end_with_nothing_after_is_a_tail():
    records = [encode_record(b"payload %d" % i) for i in range(3)]
    report = FramingReport()
    found = list(iter_records(b"".join(records) + _header(1 << 29) + b"x" * 40, report))
    assert len(found) == 3 and report.truncated_tail and report.corrupt_records == 0


def test_inserted_bytes_inside_a_record_cost_that_record_only():
    records = [encode_record(bytes([i]) * 100) for i in range(4)]
    damaged = bytearray(b"".join(records))
    damaged[len(records[0]) + 50 : len(records[0]) + 50] = b"\x07" * 33
    report = FramingReport()
    found = list(iter_records(bytes(damaged), report))
    assert found == [bytes([i]) * 100 for i in (0, 2, 3)]
    assert report.corrupt_records == 1


def test_deleted_bytes_inside_a_record_cost_that_record_only():
    # The damaged record's length now points into the next one: reading
    # resumes at the next valid header, not where the length points.
    records = [encode_record(bytes([i]) * 100) for i in range(4)]
    damaged = bytearray(b"".join(records))
    del damaged[len(records[0]) + 40 : len(records[0]) + 60]
    found = list(iter_records(bytes(damaged)))
    assert found == [bytes([i]) * 100 for i in (0, 2, 3)]


def test_resync_over_zeros_is_a_scan_not_a_byte_by_byte_search(monkeypatch):
    """Issue 14: 1 MB of zeros cost 3.7 s, one header check per byte.

    The count of scalar header checks is what made it slow; before the fix
    it was one per byte (over a million here, seen failing). Speed itself is
    measured in `benchmarks/fuzz_reader.py`.
    """
    from bnscope.events import tfrecord

    calls = []
    real = tfrecord._valid_header_at
    monkeypatch.setattr(
        tfrecord, "_valid_header_at", lambda *args: calls.append(1) or real(*args)
    )
    records = [encode_record(b"payload %d" % i) for i in range(3)]
    damaged = records[0] + b"\0" * (1 << 20) + records[1] + records[2]
    report = FramingReport()
    assert len(list(iter_records(damaged, report))) == 3
    assert report.corrupt_records == 1 and report.skipped_bytes == 1 << 20
    assert len(calls) < 10


def _slow_next_header(buffer: bytes, offset: int) -> int:
    """The obviously correct search the vectorized scan must agree with."""
    for position in range(offset + 1, len(buffer) - 11):
        length, crc = struct.unpack_from("<QI", buffer, position)
        if (
            length <= MAX_RECORD_BYTES
            and masked_crc32c(buffer[position : position + 8]) == crc
        ):
            return position
    return len(buffer)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=8),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["flip", "zeros", "garbage"])),
        max_size=4,
    ),
    garbage=st.binary(min_size=1, max_size=64),
    start=st.floats(0, 1),
)
def test_fast_scan_agrees_with_a_byte_by_byte_search(payloads, edits, garbage, start):
    from bnscope.events.tfrecord import _next_header

    buffer = bytearray(b"".join(encode_record(p) for p in payloads))
    for where, kind in edits:
        position = int(where * (len(buffer) - 1))
        if kind == "flip":
            buffer[position] ^= 0x10
        elif kind == "zeros":
            buffer[position:position] = bytes(len(garbage))
        else:
            buffer[position:position] = garbage
    buffer = bytes(buffer)
    offset = int(start * (len(buffer) - 1))
    assert _next_header(buffer, offset) == _slow_next_header(buffer, offset)


def test_fast_scan_agrees_across_scan_windows():
    # Past the first window (4 KiB) and the largest (64 KiB), with headers in
    # the garbage that fail their CRC by one bit.
    from bnscope.events.tfrecord import _next_header

    rng = np.random.default_rng(14)
    near_miss = bytearray(_header(10))
    near_miss[9] ^= 0x01
    pieces = [rng.bytes(70_000), bytes(near_miss) * 50, rng.bytes(5_000)]
    pieces += [encode_record(b"found"), bytes(90_000), encode_record(b"again")]
    buffer = b"".join(pieces)
    for offset in (0, 69_999, 75_600, len(buffer) - 40):
        assert _next_header(buffer, offset) == _slow_next_header(buffer, offset)
