"""Every parser of user text costs linear time in its input, bombs included: the BBCode
renderer and quote references (projection time, in the worker), the reply box's quote
prefill, and the cleaning of bodies, titles and names."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable

import pytest

from common.bbcode import quote_refs, render
from service.domain import text
from service.domain.errors import InvalidInputError
from service.domain.quoting import quoted, without_quotes
from tests.security.hostile import BOMBS, GROWTH, LIMIT, SIZE, seconds


def _refused_or(clean: Callable[[str], str]) -> Callable[[str], object]:
    def run(value: str) -> object:
        try:
            return clean(value)
        except InvalidInputError:
            return None
    return run


PARSERS: dict[str, Callable[[str], object]] = {
    "render": render,
    "quote_refs": quote_refs,
    "quote prefill": lambda body: quoted("ann", 1, body),
    "clean_body": _refused_or(text.clean_body),
    "clean_title": _refused_or(text.clean_title),
    "clean_name": _refused_or(text.clean_name),
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("bomb", BOMBS)
def test_parsing_user_text_grows_linearly_with_its_size(parser, bomb):
    parse, make = PARSERS[parser], BOMBS[bomb]
    small, large = make(SIZE), make(GROWTH * SIZE)
    parse(small)  # warm caches (regex compilation) out of the measure
    # Up to three measures, the lowest kept: another process on a loaded 2-core machine
    # can inflate one (seen: 10.5x once under load, 4x alone), while a quadratic parser
    # (16x) stays above the limit every time.
    ratio = float("inf")
    for _ in range(3):
        ratio = min(ratio, seconds(lambda: parse(large))
                    / max(seconds(lambda: parse(small)), 1e-4))
        if ratio < LIMIT:
            break
    assert ratio < LIMIT, f"{parser} on {bomb}: {GROWTH}x the input cost {ratio:.1f}x"


def test_a_prefill_of_49000_characters_of_unclosed_quotes_takes_milliseconds():
    # It took 50 s with a regex in a loop; a ratio cannot see a fixed cost, this can.
    assert seconds(lambda: quoted("ann", 1, "[quote=" * 7000), repeat=1) < 0.5


def test_the_prefill_leaves_out_the_quoted_posts_own_quotes_at_any_depth():
    deep = "[quote=a]" * 10_000 + "inner" + "[/quote]" * 10_000
    assert quoted("ann", 7, f"{deep}\n\nmy words") == "[quote=ann post=7]my words[/quote]\n"
    assert without_quotes("[QUOTE]a[quote=b post=2]b[/quote]c[/Quote]  d") == "d"
    # What is not a closed block stays: unclosed openers, stray closers, other tags.
    assert without_quotes("[quote=a]open [b]x[/b]") == "[quote=a]open [b]x[/b]"
    assert without_quotes("x[/quote] y") == "x[/quote] y"
    assert without_quotes("[quote=a][quote=b]in[/quote] out") == "[quote=a]out"


def test_normalization_keeps_at_most_30_combining_marks_in_a_row():
    zalgo = "a" + "\u0316\u0301" * 20_000
    body = text.clean_body(zalgo)
    assert 1 < len(body) <= 1 + text.MAX_NON_STARTERS
    assert text.clean_body("e\u0301 \u00e9") == "\u00e9 \u00e9"  # ordinary marks compose


def test_every_combining_mark_is_in_the_range_the_cleaner_scans():
    # text._non_starters scans U+0300..U+1FFFF only; a newer Unicode could add marks
    # beyond it.
    assert not any(unicodedata.combining(chr(cp)) for cp in range(0x20000, sys.maxunicode + 1))
    assert not any(unicodedata.combining(chr(cp)) for cp in range(0x300))
