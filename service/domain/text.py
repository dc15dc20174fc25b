"""Validation of what people type: titles, bodies, names, slugs."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from common.characters import drop_controls
from service.domain.errors import InvalidInputError, ReservedNameError
from service.domain.names import confusing_mix, reserved_word

TITLE_MAX = 200
BODY_MAX = 50_000
NAME_MAX = 32

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_NAME_PUNCTUATION = frozenset(" .-_")

# Characters that show nothing on their own (Unicode's Default_Ignorable_Code_Point, plus
# BRAILLE PATTERN BLANK), besides the general categories below: zero-width spaces and
# joiners, bidi controls, soft hyphen, Hangul fillers, variation selectors, tags.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
_IGNORABLE_SET = frozenset(cp for low, high in _IGNORABLE for cp in range(low, high + 1))
# Controls, format characters, separators and marks: nothing a reader sees by itself
# (a combining mark alone shows at most a dotted circle).
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zs", "Zl", "Zp", "Mn", "Mc", "Me"})


def invisible(ch: str) -> bool:
    return ord(ch) in _IGNORABLE_SET or unicodedata.category(ch) in _BLANK_CATEGORIES


def has_visible(text: str) -> bool:
    """Whether anything would show. Invisible characters inside real text stay (a ZWJ in
    an emoji sequence, a ZWNJ in Persian); text made of nothing else is empty. Linear."""
    return not all(invisible(ch) for ch in text)


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
    body = drop_controls(_normalize("NFC", body)).strip()
    if not has_visible(body):
        raise InvalidInputError("body must not be empty (invisible characters do not count)")
    if len(body) > BODY_MAX:
        raise InvalidInputError(f"body is longer than {BODY_MAX} characters")
    return body


def clean_title(title: str) -> str:
    title = " ".join(drop_controls(_normalize("NFC", title)).split())
    if not has_visible(title):
        raise InvalidInputError("title must not be empty (invisible characters do not count)")
    if len(title) > TITLE_MAX:
        raise InvalidInputError(f"title is longer than {TITLE_MAX} characters")
    return title


def normal_name(name: str) -> str:
    """A name as it is kept (NFKC, spaces collapsed), without judging it: for finding a
    member registered before today's name rules (sign-in must still find them)."""
    return " ".join(_normalize("NFKC", name).split())


def clean_name(name: str, what: str = "name") -> str:
    """A name as it is kept and shown, or a refusal: letters and digits of one script
    (or an everyday mix such as Latin with Han and Kana), spaces, '.', '-', '_'; no
    invisible characters; nothing that looks like a reserved name (service/domain/names.py)."""
    # NFKC folds look-alikes (fullwidth letters, ligatures) so nobody poses as a member.
    name = normal_name(name)
    if not has_visible(name):
        raise InvalidInputError(f"{what} must not be empty (invisible characters do not count)")
    if len(name) > NAME_MAX:
        raise InvalidInputError(f"{what} is longer than {NAME_MAX} characters")
    if any(ord(ch) in _IGNORABLE_SET for ch in name):
        raise InvalidInputError(f"{what} must not hold invisible characters")
    if not _name_shape(name):
        raise InvalidInputError(
            f"{what} may hold letters, digits, spaces, '.', '-' and '_', "
            "and must start and end with a letter or digit"
        )
    mix = confusing_mix(name)
    if mix is not None:
        raise InvalidInputError(
            f"{what} mixes scripts that can be mistaken for one another "
            f"({', '.join(sorted(s.title() for s in mix))}); use one script"
        )
    word = reserved_word(name)
    if word is not None:
        raise ReservedNameError(f"{what} {name!r} is reserved (it looks like {word!r})")
    return name


def _name_shape(name: str) -> bool:
    """Starts and ends with a letter or digit (a combining mark may follow one); in
    between only letters, digits, marks and single '_' or other punctuation allowed."""
    if not name[0].isalnum() or "__" in name:
        return False
    previous = ""
    for ch in name:
        if ch.isalnum() or ch in _NAME_PUNCTUATION:
            pass
        elif unicodedata.category(ch).startswith("M"):
            if not (previous.isalnum() or unicodedata.category(previous or " ").startswith("M")):
                return False
        else:
            return False
        previous = ch
    return name[-1] not in _NAME_PUNCTUATION


def check_slug(slug: str) -> str:
    if not _SLUG.fullmatch(slug):
        raise InvalidInputError(
            "slug must be 1-64 lowercase letters, digits or '-', not starting or ending with '-'"
        )
    return slug
