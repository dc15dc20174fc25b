"""Encoding and one-pass decoding of stored events."""

from __future__ import annotations

from typing import Any

import msgspec

from events.catalog import ForumEvent
from events.upcasters import UPCASTERS

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ForumEvent)
_many_decoder = msgspec.json.Decoder(list[ForumEvent])


def encode(event: ForumEvent) -> bytes:
    return _encoder.encode(event)


def _upcast(raw: dict[str, Any]) -> ForumEvent:
    for upcast in UPCASTERS.get(raw.get("type", ""), []):
        raw = upcast(raw)
    converted: ForumEvent = msgspec.convert(raw, ForumEvent)
    return converted


def decode(data: bytes | str) -> ForumEvent:
    if UPCASTERS:
        return _upcast(msgspec.json.decode(data))
    decoded: ForumEvent = _decoder.decode(data)
    return decoded


def decode_many(array: bytes | str) -> list[ForumEvent]:
    """A JSON array of stored events in one pass: one call for a whole page of the log."""
    if UPCASTERS:
        return [_upcast(raw) for raw in msgspec.json.decode(array)]
    decoded: list[ForumEvent] = _many_decoder.decode(array)
    return decoded
