"""Tests for common.bbcode: BBCode -> safe HTML rendering and quote references."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.bbcode import (
    _TOKEN_TAG_START,
    QuoteRef,
    _Parser,
    _render_markup,
    quote_refs,
    render,
)
from common.characters import drop_controls

ALLOWED_TAGS = {"strong", "em", "a", "blockquote", "div", "br"}
VOID_TAGS = {"br"}
ALLOWED_ATTRS = {"href", "rel", "class", "data-post"}


class StructureChecker(HTMLParser):
    """Collects structural problems of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name not in ALLOWED_ATTRS:
                self.problems.append(f"attribute {name!r} on <{tag}>")
            squashed = "".join(ch for ch in value or "" if ch.isprintable() and not ch.isspace())
            if squashed.lower().startswith("javascript:"):
                self.problems.append(f"javascript attribute {value!r}")
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"self-closing <{tag}/>")
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"unknown declaration {data!r}")


def check_html(output: str) -> StructureChecker:
    checker = StructureChecker()
    checker.feed(output)
    checker.close()
    assert checker.problems == [], (checker.problems, output)
    assert checker.stack == [], ("unclosed tags", checker.stack, output)
    return checker


def links(output: str) -> list[dict[str, str | None]]:
    return [attrs for tag, attrs in check_html(output).tags if tag == "a"]


# --- basic formatting -------------------------------------------------------------------


def test_bold_renders_as_strong() -> None:
    assert render("[b]x[/b]") == "<strong>x</strong>"


def test_italic_renders_as_em() -> None:
    assert render("[i]x[/i]") == "<em>x</em>"


def test_tag_names_are_case_insensitive() -> None:
    assert render("[B]x[/b] [I]y[/I]") == "<strong>x</strong> <em>y</em>"


def test_nested_formatting_renders_nested_elements() -> None:
    assert render("[b]a [i]b[/i] c[/b]") == "<strong>a <em>b</em> c</strong>"


def test_empty_body_renders_empty_string() -> None:
    assert render("") == ""


def test_newlines_become_br() -> None:
    assert render("a\nb\n\nc") == "a<br>b<br><br>c"


def test_crlf_and_cr_newlines_become_single_br() -> None:
    assert render("a\r\nb\rc") == "a<br>b<br>c"


def test_text_is_html_escaped() -> None:
    assert render("""<a> & "b" 'c'""") == "&lt;a&gt; &amp; &quot;b&quot; &#39;c&#39;"


def test_existing_entities_are_escaped_not_interpreted() -> None:
    assert render("&lt;b&gt;") == "&amp;lt;b&amp;gt;"


def test_cosmetic_replacements_are_disabled() -> None:
    text = "a -- b --- c... (c) (reg) (tm)"
    assert render(text) == text


def test_bare_urls_are_not_linkified() -> None:
    out = render("see http://example.com and www.example.com/x")
    assert "<a" not in out
    assert out == "see http://example.com and www.example.com/x"


def test_tabs_are_kept() -> None:
    assert render("a\tb") == "a\tb"


def test_control_characters_are_removed() -> None:
    assert render("a\x00b\x01c\x07d\x08e\x0bf\x0cg\x1bh\x7fi\x85j\x9fk") == "abcdefghijk"


def test_control_characters_inside_tags_are_removed() -> None:
    assert render("[b\x00]x[/\x07b]") == "<strong>x</strong>"


def test_lone_surrogates_are_removed() -> None:
    out = render("a\ud800b")
    assert out == "ab"
    out.encode("utf-8")


# --- links ----------------------------------------------------------------------------------


def test_bare_url_tag_becomes_nofollow_link() -> None:
    assert render("[url]http://example.com/a[/url]") == (
        '<a href="http://example.com/a" rel="nofollow ugc">http://example.com/a</a>'
    )


def test_url_tag_with_target_links_the_text() -> None:
    assert render("[url=https://example.com/]the site[/url]") == (
        '<a href="https://example.com/" rel="nofollow ugc">the site</a>'
    )


def test_url_target_may_be_quoted() -> None:
    assert render('[url="https://example.com/"]x[/url]') == (
        '<a href="https://example.com/" rel="nofollow ugc">x</a>'
    )


def test_url_tag_with_empty_text_shows_the_url() -> None:
    assert render("[url=https://example.com/][/url]") == (
        '<a href="https://example.com/" rel="nofollow ugc">https://example.com/</a>'
    )


def test_url_schemes_are_case_insensitive() -> None:
    assert links(render("[url]HTTPS://example.com[/url]")) == [
        {"href": "HTTPS://example.com", "rel": "nofollow ugc"}
    ]
    assert links(render("[URL=HtTp://example.com]x[/URL]")) == [
        {"href": "HtTp://example.com", "rel": "nofollow ugc"}
    ]


def test_mailto_links_are_allowed() -> None:
    assert render("[url=mailto:a@example.com]mail me[/url]") == (
        '<a href="mailto:a@example.com" rel="nofollow ugc">mail me</a>'
    )


def test_surrounding_whitespace_is_stripped_from_urls() -> None:
    assert links(render("[url] http://example.com \t[/url]")) == [
        {"href": "http://example.com", "rel": "nofollow ugc"}
    ]


def test_url_href_is_html_escaped() -> None:
    out = render('[url]http://example.com/?a=1&b="2"<x>\'[/url]')
    assert 'href="http://example.com/?a=1&amp;b=&quot;2&quot;&lt;x&gt;&#39;"' in out
    assert links(out) == [{"href": 'http://example.com/?a=1&b="2"<x>\'', "rel": "nofollow ugc"}]


def test_url_link_text_is_escaped_and_not_parsed_for_tags() -> None:
    out = render("[url=http://example.com][b]<i>[/b][/url]")
    assert out == '<a href="http://example.com" rel="nofollow ugc">[b]&lt;i&gt;[/b]</a>'


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        "javascript&#58;alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "/relative/path",
        "//evil.example.com/x",
        "www.example.com",
        "ftp://example.com/file",
        "http:/example.com",
        "http://exa mple.com",
        "",
    ],
)
def test_unsafe_url_targets_render_as_plain_text(target: str) -> None:
    for body in (f"[url={target}]click[/url]", f"[url]{target}[/url]"):
        out = render(body)
        assert "<a" not in out, (body, out)
        check_html(out)


def test_javascript_url_tag_shows_only_escaped_text() -> None:
    assert render("[url=javascript:alert(1)]click[/url]") == "click"
    assert render("[url]javascript:alert('x')[/url]") == "javascript:alert(&#39;x&#39;)"


def test_url_quote_breakout_payload_is_plain_text() -> None:
    out = render('[url]" onmouseover="x[/url]')
    assert out == "&quot; onmouseover=&quot;x"
    assert "<a" not in out


def test_url_with_embedded_quotes_cannot_add_attributes() -> None:
    out = render('[url]http://example.com/"onmouseover="alert(1)[/url]')
    assert links(out) == [
        {"href": 'http://example.com/"onmouseover="alert(1)', "rel": "nofollow ugc"}
    ]


def test_url_target_with_quote_breakout_cannot_add_attributes() -> None:
    out = render("[url=http://x.com/\"onclick='alert(1)']y[/url]")
    assert links(out) == [{"href": "http://x.com/\"onclick='alert(1)'", "rel": "nofollow ugc"}]


def test_nested_url_tags_do_not_nest_links() -> None:
    out = render("[url=http://a.com][url=http://b.com]x[/url][/url]")
    assert len(links(out)) == 1


# --- quotes ---------------------------------------------------------------------------------


def test_plain_quote_renders_blockquote() -> None:
    assert render("[quote]x[/quote]") == (
        '<blockquote class="quote"><div class="quote-body">x</div></blockquote>'
    )


def test_quote_with_name_shows_author() -> None:
    assert render("[quote=alice]x[/quote]") == (
        '<blockquote class="quote"><div class="quote-author">alice wrote:</div>'
        '<div class="quote-body">x</div></blockquote>'
    )


def test_quote_with_name_and_post_id_has_data_post() -> None:
    assert render("[quote=Alice Smith post=42]x[/quote]") == (
        '<blockquote class="quote" data-post="42"><div class="quote-author">Alice Smith wrote:'
        '</div><div class="quote-body">x</div></blockquote>'
    )


def test_quote_name_surrounding_quotes_are_stripped() -> None:
    assert render('[quote="Alice Smith" post=7]x[/quote]') == (
        '<blockquote class="quote" data-post="7"><div class="quote-author">Alice Smith wrote:'
        '</div><div class="quote-body">x</div></blockquote>'
    )


def test_quote_name_with_apostrophe_is_escaped() -> None:
    out = render("[quote=O'Brien]x[/quote] it's")
    assert out == (
        '<blockquote class="quote"><div class="quote-author">O&#39;Brien wrote:</div>'
        '<div class="quote-body">x</div></blockquote> it&#39;s'
    )


def test_quote_with_invalid_post_id_has_no_data_post() -> None:
    out = render("[quote=bob post=abc]x[/quote]")
    assert "data-post" not in out
    assert '<div class="quote-author">bob wrote:</div>' in out


def test_quote_tag_is_case_insensitive() -> None:
    assert render("[QUOTE=bob POST=3]x[/Quote]") == render("[quote=bob post=3]x[/quote]")


def test_nested_quotes_render_nested_blockquotes() -> None:
    out = render("[quote=a post=1]outer [quote=b post=2]inner[/quote] tail[/quote]")
    assert out == (
        '<blockquote class="quote" data-post="1"><div class="quote-author">a wrote:</div>'
        '<div class="quote-body">outer <blockquote class="quote" data-post="2">'
        '<div class="quote-author">b wrote:</div><div class="quote-body">inner</div>'
        "</blockquote> tail</div></blockquote>"
    )
    check_html(out)


def test_quote_body_whitespace_and_trailing_newline_are_trimmed() -> None:
    assert render("[quote]\nx\n[/quote]\nafter") == (
        '<blockquote class="quote"><div class="quote-body">x</div></blockquote>after'
    )


def test_formatting_inside_quotes_is_rendered() -> None:
    assert render("[quote][b]x[/b][/quote]") == (
        '<blockquote class="quote"><div class="quote-body"><strong>x</strong></div></blockquote>'
    )


@pytest.mark.parametrize(
    "body",
    [
        '[quote="x\\" onclick=\\"alert(1)" post=1]y[/quote]',
        '[quote=x" onclick="alert(1) post=1]y[/quote]',
        "[quote=x' onclick='alert(1)]y[/quote]",
        '[quote=a"><script>alert(1)</script> post=2]y[/quote]',
        '[quote="><img src=x onerror=alert(1)>]y[/quote]',
        '[quote=a post=1" onclick="alert(1)]y[/quote]',
    ],
)
def test_attribute_breaking_quote_names_are_escaped(body: str) -> None:
    out = render(body)
    checker = check_html(out)
    for tag, attrs in checker.tags:
        assert tag in {"blockquote", "div"}
        assert set(attrs) <= {"class", "data-post"}
        if "data-post" in attrs:
            assert (attrs["data-post"] or "").isdigit()
    assert "<script" not in out
    assert "<img" not in out


# --- XSS ------------------------------------------------------------------------------------


def test_script_tag_is_escaped() -> None:
    assert render("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_img_onerror_is_escaped() -> None:
    out = render('<img src=x onerror="alert(1)">')
    assert out == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    check_html(out)


def test_html_inside_tags_is_escaped() -> None:
    out = render("[b]<script>x</script>[/b][quote=<b>]<i>[/quote]")
    assert "<script" not in out
    assert "<b>" not in out
    assert "<i>" not in out
    check_html(out)


# --- malformed input ------------------------------------------------------------------------


def test_unknown_tags_render_as_literal_text() -> None:
    assert render("[img]http://x/y.png[/img] [color=red]r[/color] [*]") == (
        "[img]http://x/y.png[/img] [color=red]r[/color] [*]"
    )


def test_known_tags_with_unexpected_options_render_as_literal_text() -> None:
    assert render("[b=1]x[/b]") == "[b=1]x"
    assert render("[url http://x.com]y[/url]") == "[url http://x.com]y"


def test_unclosed_tag_is_closed_at_end_of_body() -> None:
    assert render("[b]bold") == "<strong>bold</strong>"


def test_unclosed_quote_is_closed_at_end_of_body() -> None:
    out = render("[quote]x")
    assert out == '<blockquote class="quote"><div class="quote-body">x</div></blockquote>'


def test_unclosed_tag_is_closed_at_end_of_enclosing_tag() -> None:
    assert render("[quote][b]x[/quote]y") == (
        '<blockquote class="quote"><div class="quote-body"><strong>x</strong></div></blockquote>y'
    )


def test_stray_closing_tags_are_dropped() -> None:
    assert render("a[/b]b[/quote]c[/url]d") == "abcd"


def test_interleaved_tags_produce_balanced_html() -> None:
    out = render("[b][i]x[/b][/i]")
    assert out == "<strong><em>x</em></strong>"
    check_html(out)


def test_unterminated_tag_renders_as_text() -> None:
    assert render("[quote=") == "[quote="
    assert render("[quote=bob post=1") == "[quote=bob post=1"
    assert render("x [b") == "x [b"
    assert render("[") == "["


def test_tag_split_across_lines_renders_as_text() -> None:
    assert render("[quote=a\nb]x") == "[quote=a<br>b]x"


def test_deeply_nested_quotes_do_not_raise_and_stay_balanced() -> None:
    body = "[quote=a post=1]" * 500 + "x" + "[/quote]" * 500
    out = render(body)
    check_html(out)
    assert out.startswith('<blockquote class="quote" data-post="1">')


def test_deeply_nested_unclosed_tags_do_not_raise() -> None:
    check_html(render("[b][i]" * 5000))
    check_html(render("[quote]" * 10000))


@pytest.mark.parametrize(
    "body",
    [
        "hello world " * 4200,
        "[b]" * 17000,
        "[b]x[/b]" * 6250,
        "[" * 50000,
        "[]" * 25000,
        "[quote=" + "a " * 25000,
        "[quote]" * 7200,
        "[quote]" * 3000 + "x" + "[/quote]" * 3000,
        "[url]" * 10000,
        '[url="' * 8400,
        "[b][i][url=http://x.com]y[/url]" * 1700,
        "[quote=a post=1]x[/quote]\n" * 1900,
        "[b]\n" * 12500,
        "<&>\"'" * 10000,
        "\n" * 50000,
        "[x]" * 16700,
        "[/b]" * 12500,
    ],
)
def test_fifty_thousand_character_body_renders_quickly(body: str) -> None:
    body = body[:50000]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        out = render(body)
        best = min(best, time.perf_counter() - started)
    check_html(out)
    assert best < 0.05, f"{best * 1000:.1f} ms"


# --- property tests -------------------------------------------------------------------------

FRAGMENTS = [
    "[b]",
    "[/b]",
    "[i]",
    "[/i]",
    "[B]",
    "[/I]",
    "[url]",
    "[/url]",
    "[url=",
    "[url=http://x.com/a?b=c&d]",
    "[url=javascript:alert(1)]",
    "[url= JaVaScRiPt:alert(1)]",
    "javascript:alert(1)",
    "http://example.com",
    "mailto:a@b.c",
    "[quote]",
    "[/quote]",
    "[quote=",
    "[quote=bob]",
    '[quote="bob smith" post=12]',
    "[quote=x post=",
    " post=",
    "[QUOTE=a post=1]",
    "[color=red]",
    "[*]",
    "[",
    "]",
    "=",
    '"',
    "'",
    "<",
    ">",
    "&",
    "&amp;",
    "<script>",
    "<img src=x onerror=alert(1)>",
    '" onmouseover="x',
    "\n",
    "\r",
    "\r\n",
    "\t",
    " ",
    "\x00",
    "\x1b",
    "\x85",
    "\u2028",
]

bodies = st.lists(
    st.one_of(st.text(max_size=20), st.sampled_from(FRAGMENTS)),
    max_size=60,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(bodies)
def test_rendered_html_is_always_safe_and_balanced(body: str) -> None:
    out = _render_markup(body)  # the unguarded path: must not raise either
    assert render(body) == out
    check_html(out)
    assert re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out) is None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_render_never_raises_on_arbitrary_text(body: str) -> None:
    check_html(_render_markup(body))


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_quote_refs_never_raises_and_returns_valid_refs(body: str) -> None:
    refs = quote_refs(body)
    ids = [ref.post_id for ref in refs]
    assert len(ids) == len(set(ids))
    for ref in refs:
        assert isinstance(ref, QuoteRef)
        assert ref.name
        assert 0 < ref.post_id < 2**63


# --- quote_refs -----------------------------------------------------------------------------


def _quote_refs_by_tokens(body: str) -> list[QuoteRef]:
    """quote_refs as it was: the renderer's own tokens (a parser built per body)."""
    refs: list[QuoteRef] = []
    for kind, name, opts, _text in _Parser().tokenize(drop_controls(body)):
        if kind != _TOKEN_TAG_START or name != "quote" or not opts:
            continue
        if opts.get("name") and opts.get("post"):
            ref = QuoteRef(name=opts["name"], post_id=int(opts["post"]))
            if ref.post_id not in {r.post_id for r in refs}:
                refs.append(ref)
    return refs


@settings(max_examples=400, deadline=None)
@given(st.one_of(bodies, st.text(alphabet="[]=/ quoteQUOTEpsb1\n\x00\x07\u0130\u212a",
                                  max_size=80)))
def test_quote_refs_reads_the_tags_as_the_renderer_tokenizes_them(body: str) -> None:
    assert quote_refs(body) == _quote_refs_by_tokens(body)


def test_quote_refs_counts_tags_as_the_renderer_does() -> None:
    body = "[b]" * 5000 + "[quote=a post=1]"  # beyond the renderer's tag limit: text
    assert quote_refs(body) == _quote_refs_by_tokens(body) == []
    assert quote_refs("[b]" * 4999 + "[quote=a post=1]") == [QuoteRef(name="a", post_id=1)]



def test_quote_refs_returns_refs_in_order_of_appearance() -> None:
    body = "[quote=b post=2]x[/quote] [quote=a post=1]y[/quote] [quote=c post=3]"
    assert quote_refs(body) == [
        QuoteRef(name="b", post_id=2),
        QuoteRef(name="a", post_id=1),
        QuoteRef(name="c", post_id=3),
    ]


def test_quote_refs_removes_duplicate_post_ids() -> None:
    body = "[quote=a post=1]x[/quote][quote=b post=2][/quote][quote=a again post=1][/quote]"
    assert quote_refs(body) == [QuoteRef(name="a", post_id=1), QuoteRef(name="b", post_id=2)]


def test_quote_refs_keeps_names_with_spaces() -> None:
    assert quote_refs("[quote=Alice van der Berg post=5]x[/quote]") == [
        QuoteRef(name="Alice van der Berg", post_id=5)
    ]


def test_quote_refs_strips_surrounding_quotes_from_names() -> None:
    assert quote_refs("[quote=\"Alice Smith\" post=5][quote='Bob' post=6]") == [
        QuoteRef(name="Alice Smith", post_id=5),
        QuoteRef(name="Bob", post_id=6),
    ]


def test_quote_refs_tag_name_is_case_insensitive() -> None:
    assert quote_refs("[QUOTE=a POST=1][Quote=b Post=2]") == [
        QuoteRef(name="a", post_id=1),
        QuoteRef(name="b", post_id=2),
    ]


def test_quote_refs_finds_nested_references() -> None:
    body = "[quote=a post=1][quote=b post=2]inner[/quote]outer[/quote]"
    assert [ref.post_id for ref in quote_refs(body)] == [1, 2]


def test_quote_refs_ignores_plain_quotes_and_quotes_without_post() -> None:
    assert quote_refs("[quote]x[/quote][quote=bob]y[/quote][quote post=3]z[/quote]") == []


def test_quote_refs_ignores_text_that_is_not_a_tag() -> None:
    assert quote_refs("quote=a post=1 and [quote=a post=1 unterminated") == []


@pytest.mark.parametrize(
    "post",
    ["abc", "-1", "+1", "1.5", "0", "1e3", "0x10", "", "\u0661\u0662", "\uff11\uff12", "12abc"],
)
def test_quote_refs_ignores_bad_post_ids(post: str) -> None:
    assert quote_refs(f"[quote=bob post={post}]x[/quote]") == []


def test_quote_refs_accepts_leading_zeros() -> None:
    assert quote_refs("[quote=bob post=007]") == [QuoteRef(name="bob", post_id=7)]


def test_quote_refs_accepts_largest_bigint_id() -> None:
    assert quote_refs(f"[quote=bob post={2**63 - 1}]") == [QuoteRef(name="bob", post_id=2**63 - 1)]


@pytest.mark.parametrize("post", [str(2**63), "9" * 30, "9" * 5000])
def test_quote_refs_ignores_ids_beyond_bigint_range(post: str) -> None:
    assert quote_refs(f"[quote=bob post={post}]x[/quote]") == []
    check_html(render(f"[quote=bob post={post}]x[/quote]"))


def test_quote_refs_of_empty_or_plain_body_is_empty() -> None:
    assert quote_refs("") == []
    assert quote_refs("no quotes here") == []


def test_quote_refs_is_fast_on_large_bodies() -> None:
    body = ("[quote=a b c post=12345]x[/quote]" * 2000)[:50000]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        refs = quote_refs(body)
        best = min(best, time.perf_counter() - started)
    assert best < 0.05, f"{best * 1000:.1f} ms"
    assert refs == [QuoteRef(name="a b c", post_id=12345)]
