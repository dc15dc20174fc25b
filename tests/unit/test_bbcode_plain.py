"""The fast path for bodies without tags must render exactly as the parser does."""

from hypothesis import given, settings
from hypothesis import strategies as st

from workers import bbcode


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(blacklist_characters="["), max_size=300))
def test_plain_text_renders_as_the_parser_would(text: str) -> None:
    cleaned = bbcode._clean(text)
    assert bbcode._plain(cleaned) == bbcode._Parser().format(cleaned)


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(blacklist_characters="[", blacklist_categories=()),
               max_size=300))
def test_rendering_skips_cleaning_only_when_there_is_nothing_to_clean(text: str) -> None:
    # Controls, \r, C1 and lone surrogates included: the fast path must notice each.
    assert bbcode._render_markup(text) == bbcode._plain(bbcode._clean(text))
