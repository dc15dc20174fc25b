"""The last answers of reads, kept a short while per process (hot pages are asked for
many times a second): keyed by what was asked, each keeps the position it reflects, so a
read waiting for a later position never takes it, and read-your-writes holds."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Final, Protocol, TypeVar

# Answers kept, and pages whose data-dependent keys are remembered, per process.
KEPT: Final = 4096


class _Positioned(Protocol):
    @property
    def position(self) -> int: ...


A = TypeVar("A", bound=_Positioned)


class AnswerCache:
    """The last answers, each for ``ttl`` seconds, the least recently used dropped first."""

    def __init__(self, ttl_ms: int, size: int = KEPT) -> None:
        self.ttl = ttl_ms / 1000
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable, kind: type[A], min_position: int | None) -> A | None:
        if self.ttl <= 0:
            return None
        kept = self._kept.get(key)
        if kept is None or time.monotonic() - kept[0] >= self.ttl:
            return None
        answer = kept[1]
        if not isinstance(answer, kind) or (
                min_position is not None and answer.position < min_position):
            return None
        return answer

    def put(self, key: Hashable, answer: A) -> A:
        if self.ttl > 0:
            self._kept[key] = (time.monotonic(), answer)
            self._kept.move_to_end(key)
            if len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return answer
