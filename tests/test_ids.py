"""Opik ids from OTel ids: pinned, because a change would duplicate every trace re-sent across an upgrade."""

from __future__ import annotations

import hashlib
import uuid

from opentelemetry.exporter.opik._ids import is_uuid7, span_uuid, trace_uuid, uuid7_timestamp_ms

START_MS = 1732000000123  # 2024-11-19T07:06:40.123Z


def test_ids_are_pinned() -> None:
    # computed once with the layout of Opik's own OTel mapper; they must never change
    assert trace_uuid(0x0AF7651916CD43DD8448EB211C80319C, START_MS) == "0193433e-a87b-7334-bd2a-4b7838de7d6e"
    assert span_uuid(0xB7AD6B7169203331, START_MS) == "0193433e-a87b-70e1-9794-9816e49a8761"
    assert span_uuid(1, 0) == "00000000-0000-7d26-a215-4e6d76b2b2b9"


def test_layout_is_timestamp_then_sha256_with_version_and_variant() -> None:
    for otel_id, n, make in ((0x0AF7651916CD43DD8448EB211C80319C, 16, trace_uuid), (0xB7AD6B7169203331, 8, span_uuid)):
        u = uuid.UUID(make(otel_id, START_MS))
        assert u.version == 7 and u.variant == uuid.RFC_4122
        assert is_uuid7(str(u)) and uuid7_timestamp_ms(str(u)) == START_MS
        digest = hashlib.sha256(otel_id.to_bytes(n, "big")).digest()[:10]
        b = u.bytes
        assert b[:6] == START_MS.to_bytes(6, "big")
        assert b[6] & 0x0F == digest[0] & 0x0F and b[7:8] == digest[1:2]  # version nibble replaced
        assert b[8] & 0x3F == digest[2] & 0x3F and b[9:] == digest[3:]  # variant bits replaced


def test_timestamp_is_clamped_to_48_bits() -> None:
    assert uuid7_timestamp_ms(span_uuid(5, -1)) == 0
    assert uuid7_timestamp_ms(span_uuid(5, 1 << 50)) == (1 << 48) - 1


def test_item_labels_name_the_span_by_otel_ids_and_are_formatted_lazily() -> None:
    from opentelemetry.exporter.opik._items import Item, label_text
    from opentelemetry.exporter.opik._record import SpanRecord

    rec = SpanRecord(trace_id=0xABC, span_id=0x12, parent_span_id=None, name="chat 'x'", start_ns=1, end_ns=2, attributes={})
    key = (rec.name, rec.trace_id, rec.span_id)
    assert label_text(key) == rec.label() == f"span \"chat 'x'\" (trace_id={0xABC:032x} span_id={0x12:016x})"
    item = Item("span", "id", b"{}", key)
    assert item._label is key and item.label == rec.label()  # kept as the tuple until a log line asks
    assert Item("span", "id", b"{}", "spooled label").label == "spooled label"
