"""TFRecord framing: what TensorFlow writes, and damage costing one record."""

from __future__ import annotations

import struct

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
