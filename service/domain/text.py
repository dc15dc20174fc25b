"""Validation of what people type: titles, bodies, names, slugs."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from service.domain.errors import InvalidInputError

TITLE_MAX = 200
BODY_MAX = 50_000
NAME_MAX = 32

# Control characters other than tab, newline and carriage return have no place in a post.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_NAME = re.compile(r"[\w][\w .\-]*[\w]|[\w]")


def _non_starters() -> str:
    """A regex class of every character with a nonzero canonical combining class (none lies
    outside U+0300..U+1FFFF; tests/security checks that this stays true)."""
    marks = [cp for cp in range(0x300, 0x20000) if unicodedata.combining(chr(cp))]
    spans: list[str] = []
    start = previous = marks[0]
    for cp in [*marks[1:], -1]:
        if cp != previous + 1:
            spans.append(f"\\U{start:08x}-\\U{previous:08x}")
            start = cp
        previous = cp
    return "[" + "".join(spans) + "]"


# Normalization sorts each run of combining marks with an insertion sort: one run of
# 50,000 alternating marks costs seconds. As in the Stream-Safe Text Format (UAX #15) a
# run keeps at most 30 non-starters; the rest (stacked invisibly anyway) are dropped.
MAX_NON_STARTERS = 30
_MARK = _non_starters()
_LONG_RUN = re.compile(f"({_MARK}{{{MAX_NON_STARTERS}}}){_MARK}+")


def _normalize(form: Literal["NFC", "NFKC"], text: str) -> str:
    if not text.isascii():
        text = _LONG_RUN.sub(r"\1", text)
    return unicodedata.normalize(form, text)


def clean_body(body: str) -> str:
    body = _normalize("NFC", body.replace("\r\n", "\n").replace("\r", "\n"))
    body = _CONTROL.sub("", body).strip()
    if not body:
        raise InvalidInputError("body must not be empty")
    if len(body) > BODY_MAX:
        raise InvalidInputError(f"body is longer than {BODY_MAX} characters")
    return body


def clean_title(title: str) -> str:
    title = " ".join(_CONTROL.sub("", _normalize("NFC", title)).split())
    if not title:
        raise InvalidInputError("title must not be empty")
    if len(title) > TITLE_MAX:
        raise InvalidInputError(f"title is longer than {TITLE_MAX} characters")
    return title


def clean_name(name: str, what: str = "name") -> str:
    # NFKC folds look-alikes (fullwidth letters, ligatures) so nobody poses as a member.
    name = " ".join(_normalize("NFKC", name).split())
    if not name:
        raise InvalidInputError(f"{what} must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidInputError(f"{what} is longer than {NAME_MAX} characters")
    if not _NAME.fullmatch(name) or "__" in name:
        raise InvalidInputError(
            f"{what} may hold letters, digits, spaces, '.', '-' and '_', "
            "and must start and end with a letter or digit"
        )
    if name.casefold() in ("operator", "guest", "admin", "administrator", "moderator"):
        raise InvalidInputError(f"{what} {name!r} is reserved")
    return name


def check_slug(slug: str) -> str:
    if not _SLUG.fullmatch(slug):
        raise InvalidInputError(
            "slug must be 1-64 lowercase letters, digits or '-', not starting or ending with '-'"
        )
    return slug
