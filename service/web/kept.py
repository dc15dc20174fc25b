"""Pages rendered once and kept, for pages that show the same to everyone who views them
alike (a thread's page at one read-model position, seen by guests): rendering a page's
template costs several times reading what it shows.

A kept page holds ``TOKEN_SLOT`` where each viewer's form token goes (service/web/csrf.py):
no text on a page can hold a NUL (common/characters.py drops them from what people write),
so putting the token there changes nothing else. Kept pages are bounded in size (in
characters: bytes, for pages of mostly ASCII markup), the least recently used dropped
first; what a key names never changes, so nothing expires.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

TOKEN_SLOT: Final = "\x00csrf\x00"  # noqa: S105 (a slot, not a secret)


class KeptPages:
    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._kept: OrderedDict[Hashable, str] = OrderedDict()

    def page(self, key: Hashable, render: Callable[[str], str]) -> str:
        """The page kept for ``key``, or ``render(TOKEN_SLOT)`` kept from now on."""
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        html = render(TOKEN_SLOT)
        size = len(html)
        if size <= self.max_bytes // 8:  # no one page may push out most of the others
            self._kept[key] = html
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self.bytes -= len(dropped)
        return html
