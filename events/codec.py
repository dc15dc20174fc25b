"""Encoding and one-pass decoding of stored events."""

from __future__ import annotations

from typing import Any

import msgspec

from events.catalog import ForumEvent
from events.upcasters import UPCASTERS

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ForumEvent)


def encode(event: ForumEvent) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> ForumEvent:
    if UPCASTERS:
        raw: dict[str, Any] = msgspec.json.decode(data)
        for upcast in UPCASTERS.get(raw.get("type", ""), []):
            raw = upcast(raw)
        converted: ForumEvent = msgspec.convert(raw, ForumEvent)
        return converted
    decoded: ForumEvent = _decoder.decode(data)
    return decoded
