"""Conditional GETs: every read answers an ``ETag`` naming the state it shows, and a
request whose ``If-None-Match`` names it is answered ``304 Not Modified`` with no body.

A tag is made from what a read already answers, never from the bytes: the checkpoints and
namespaces of the read models the value came from (``seen`` and ``spaces``: the value is
the same whenever they are), what else shapes the bytes (the variant, the viewer of a
page), and the release: a digest of this code and its templates and of the settings that
shape answers, so that a deploy or a changed page size changes every tag. So a 304 costs
the read and nothing more: no splice, no render. The tags are weak (``W/``): they name a
state, not a byte string, and a compressing proxy leaves a weak tag as it is
(``If-None-Match`` compares weakly anyway; nothing here serves byte ranges).

The edge (service/edge.py) answers 304 for any 200 whose ``ETag`` the request names: the
JSON routes only set the tag. Pages and feeds check before rendering (``not_modified``)
and never reach it with a match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable
from functools import cache, lru_cache
from pathlib import Path
from typing import Final, Protocol

from litestar import Response

# The packages whose code and templates make the answers (pyproject's wheel packages).
_ROOT: Final = Path(__file__).resolve().parent.parent
_PACKAGES: Final = ("common", "events", "service", "workers")
_SOURCES: Final = (".py", ".j2", ".css", ".js")
# Headers a 304 repeats from the 200 it stands for (RFC 9110 15.4.5), and those it drops.
BODY_HEADERS: Final = frozenset({b"content-length", b"content-type", b"content-encoding",
                                 b"transfer-encoding"})


class Stated(Protocol):
    """A read's value: the lowest checkpoint it reflects, all of them, and namespaces."""

    @property
    def position(self) -> int: ...

    @property
    def seen(self) -> tuple[int, ...]: ...

    @property
    def spaces(self) -> tuple[str, ...]: ...


@cache
def code_digest(root: Path = _ROOT) -> str:
    """A digest of every source file and template of the app (read once per process: about
    600 kB, a millisecond)."""
    digest = hashlib.blake2b(digest_size=16)
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in _SOURCES and path.is_file():
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _digest(parts: Iterable[Hashable]) -> str:
    return hashlib.blake2b(repr(tuple(parts)).encode(), digest_size=12).hexdigest()


@lru_cache(maxsize=4096)
def _kept_digest(parts: tuple[Hashable, ...]) -> str:
    """``_digest`` of a tag's parts, kept: a read answers the same state many times over,
    and hashing the parts costs a fraction of writing them out and digesting them (which
    was the largest cost of this project's own code in a kept JSON page)."""
    return _digest(parts)


class Tags:
    """Makes the ETags of one app: ``release`` is the code digest and the settings that
    shape answers (service/app.py builds it)."""

    def __init__(self, release: str) -> None:
        self.release = release

    @classmethod
    def of_settings(cls, *shaping: Hashable) -> Tags:
        return cls(_digest((code_digest(), *shaping)))

    def tag(self, position: int, *parts: Hashable) -> str:
        """``W/"<position>-<digest>"``: the position in the clear (it is in
        ``X-Projection-Position`` too), the digest of the release and ``parts``."""
        return f'W/"{position}-{_kept_digest((self.release, *parts))}"'

    def of(self, variant: str, view: Stated, *parts: Hashable) -> str:
        """The tag of a read's value as ``variant`` (json, html, atom, ...)."""
        return self.tag(view.position, variant, view.seen, view.spaces, *parts)


def body_tag(body: bytes) -> str:
    """The tag of an answer that is not a read model's (a form page, a private list):
    its bytes' digest, right by construction and made after the body."""
    return f'W/"b-{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2), or is
    ``*``. Anything malformed simply names nothing; linear in the header's length."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":  # any current representation: there is one
        return True
    opaque = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque
               for candidate in if_none_match.split(","))


def not_modified(if_none_match: str | None, headers: dict[str, str]) -> Response[bytes] | None:
    """A 304 with ``headers`` (ETag, Cache-Control, Vary, ...) when the request's
    ``If-None-Match`` names ``headers["ETag"]``; None otherwise."""
    if not matches(if_none_match, headers["ETag"]):
        return None
    return Response(content=b"", status_code=304, headers=headers)
