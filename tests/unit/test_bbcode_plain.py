"""The fast path for bodies without tags must render exactly as the parser does."""

from hypothesis import given, settings
from hypothesis import strategies as st

from common import bbcode
from common.characters import drop_controls as clean
from common.html_text import plain, tagless_html


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(blacklist_characters="["), max_size=300))
def test_plain_text_renders_as_the_parser_would(text: str) -> None:
    cleaned = clean(text)
    assert plain(cleaned) == bbcode._Parser().format(cleaned)


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(blacklist_characters="[", blacklist_categories=()),
               max_size=300))
def test_rendering_skips_cleaning_only_when_there_is_nothing_to_clean(text: str) -> None:
    # Controls, \r, C1 and lone surrogates included: the fast path must notice each.
    assert tagless_html(text) == plain(clean(text)) == bbcode.render(text)


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(max_codepoint=127, blacklist_characters="["),
               max_size=300))
def test_ascii_bodies_are_cleaned_exactly_as_the_parser_cleans(text: str) -> None:
    # Every ASCII control, \r and DEL included: the ASCII path must notice each.
    assert tagless_html(text) == plain(clean(text)) == bbcode.render(text)


@given(st.text(max_size=50).map(lambda text: text + "[b]"))
def test_bodies_with_a_bracket_go_to_the_parser(text: str) -> None:
    assert tagless_html(text) is None
