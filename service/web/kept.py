"""Pages rendered once and kept, for pages that show the same to everyone who views them
alike (a thread's page at one read-model position, seen by guests): rendering a page's
template costs several times reading what it shows.

A page holds ``TOKEN_SLOT`` where each viewer's form token goes (service/web/csrf.py): no
text on a page can hold a NUL (common/characters.py drops them from what people write),
so putting the token there changes nothing else. A page is kept as its UTF-8 bytes cut at
the slots (``Rendered``), so that answering it is one join of bytes: replacing the slot in
the text and encoding the result took a quarter of a kept thread page's CPU. Kept pages
are bounded in bytes, the least recently used dropped first; what a key names never
changes, so nothing expires.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

TOKEN_SLOT: Final = "\x00csrf\x00"  # noqa: S105 (a slot, not a secret)
_SLOT: Final = TOKEN_SLOT.encode()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered page: its UTF-8 bytes, cut where the form token goes."""

    pieces: tuple[bytes, ...]

    @classmethod
    def of(cls, html: str) -> Rendered:
        return cls(tuple(html.encode().split(_SLOT)))

    @property
    def has_form(self) -> bool:
        """Whether the page holds a form (a place for a form token)."""
        return len(self.pieces) > 1

    @property
    def size(self) -> int:
        return sum(len(piece) for piece in self.pieces)

    def with_token(self, token: str) -> bytes:
        """The page's bytes with ``token`` in every form."""
        return token.encode().join(self.pieces)

    @property
    def formless(self) -> bytes:
        """The bytes of a page that holds no form (a feed, a page without one)."""
        if self.has_form:
            raise ValueError("this page holds a form: its bytes need a token")
        return self.pieces[0]


class KeptPages:
    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._kept: OrderedDict[Hashable, Rendered] = OrderedDict()

    def page(self, key: Hashable, render: Callable[[str], str]) -> Rendered:
        """The page kept for ``key``, or ``render(TOKEN_SLOT)`` kept from now on."""
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        page = Rendered.of(render(TOKEN_SLOT))
        size = page.size
        if size <= self.max_bytes // 8:  # no one page may push out most of the others
            self._kept[key] = page
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self.bytes -= dropped.size
        return page
