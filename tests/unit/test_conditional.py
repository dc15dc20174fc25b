"""ETags and If-None-Match (service/conditional.py), and the Atom writer
(service/web/atom.py): pure parts."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import feedparser
import pytest

from service.conditional import Tags, body_tag, code_digest, matches
from service.web.atom import EPOCH, Entry, Feed, document
from service.web.feeds import feed_name, public_base
from workers.readmodels.values import Forums

A = "{http://www.w3.org/2005/Atom}"


def forums(seen: tuple[int, ...], spaces: tuple[str, ...] = ("v1.1.0",)) -> Forums:
    return Forums([], min(seen), seen, spaces)


def test_a_tag_names_the_state_not_the_clock():
    tags = Tags("r1")
    tag = tags.of("json", forums((5, 7)))
    assert tag == tags.of("json", forums((5, 7)))
    assert tag.startswith('W/"5-')
    assert tag != tags.of("json", forums((5, 8)))  # any checkpoint, not only the lowest
    assert tag != tags.of("json", forums((5, 7), ("v1.2.9",)))  # a rebuilt namespace
    assert tag != tags.of("html", forums((5, 7)))  # the variant
    assert tag != tags.of("json", forums((5, 7)), "ann")  # the viewer
    assert tag != Tags("r2").of("json", forums((5, 7)))  # another release


def test_the_release_digest_covers_code_and_shaping_settings():
    assert len(code_digest()) == 32
    assert Tags.of_settings(25).release == Tags.of_settings(25).release
    assert Tags.of_settings(25).release != Tags.of_settings(50).release


@pytest.mark.parametrize(("header", "hit"), [
    ('W/"5-abc"', True), ('"5-abc"', True), ('W/"1-x", W/"5-abc"', True), ("*", True),
    (' W/"5-abc" ', True), ('W/"5-abd"', False), ("5-abc", False), ("", False), (None, False),
    ('W/"5-abc', False), ("W/", False), (",,,", False), ("\x00\xff", False),
    ("*, *", False), ('*, W/"1-x"', False),
])
def test_if_none_match_compares_weakly(header, hit):
    assert matches(header, 'W/"5-abc"') is hit


def test_a_huge_if_none_match_is_read_in_linear_time():
    def cost(n: int) -> float:
        header = ('W/"1-x", ' * n) + "garbage" * n
        start = time.perf_counter()
        for _ in range(5):
            assert not matches(header, 'W/"5-abc"')
        return time.perf_counter() - start

    cost(10_000)
    assert cost(400_000) < 40 * cost(100_000) + 0.05


def test_a_body_tag_is_the_bytes():
    assert body_tag(b"a") == body_tag(b"a") != body_tag(b"b")
    assert body_tag(b"a").startswith('W/"b-')


def test_feed_names_and_the_public_address():
    assert feed_name("general.atom") == "general"
    assert feed_name("12.atom") == "12"
    assert feed_name("general") is None
    assert public_base("") == ""
    assert public_base("https://forum.example/") == "https://forum.example"
    assert public_base("http://[::1]:8000") == "http://[::1]:8000"
    for bad in ("forum.example", "ftp://x", "https://x/path", "https://x?q", "https://a b"):
        with pytest.raises(ValueError, match="FORUM_PUBLIC_URL"):
            public_base(bad)


def _entry(**changes: str) -> Entry:
    fields = {"id": "https://f.example/threads/1", "title": "Hello", "author": "ann",
              "link": "https://f.example/threads/1", "published": "2026-01-02T03:04:05.000Z",
              "updated": "2026-01-02T03:04:05.000Z", "html": "<p>hi</p>"} | changes
    return Entry(**fields)


def _feed(*entries: Entry, updated: str = "") -> Feed:
    return Feed(id="https://f.example/feeds/latest.atom", title="Forum: new threads",
                self_link="https://f.example/feeds/latest.atom",
                page_link="https://f.example/", entries=list(entries), updated=updated)


def test_a_feed_is_atom_with_every_required_element():
    xml = document(_feed(_entry(), _entry(id="https://f.example/threads/2",
                                          updated="2026-02-01T00:00:00.000Z")))
    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    assert parsed.feed.updated == "2026-02-01T00:00:00.000Z"  # the newest entry's
    root = ET.fromstring(xml)
    for element in ("id", "title", "updated"):
        assert root.find(A + element) is not None
    for entry in root.findall(A + "entry"):
        for element in ("id", "title", "updated", "author/" + A + "name", "content"):
            assert entry.find(A + element) is not None, element
    assert parsed.entries[0].content[0].value == "<p>hi</p>"
    assert parsed.entries[0].content[0].type == "text/html"


def test_text_is_escaped_and_what_xml_cannot_hold_is_dropped():
    nasty = '<b>&"\'</b>\x00\x01\x0b\ufffe\ud800 ok'
    xml = document(_feed(_entry(title=nasty, author=nasty, html=f"<p>{nasty}</p>",
                                link='https://f.example/"><x'),
                         updated="2026-03-01T00:00:00Z"))
    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.bozo_exception
    entry = parsed.entries[0]
    assert entry.title == "<b>&\"'</b> ok"
    assert entry.author == "<b>&\"'</b> ok"
    assert entry.link == 'https://f.example/"><x'
    assert entry.content[0].value.startswith("<p>")
    ET.fromstring(xml)  # well-formed for a strict parser too


def test_an_empty_feed_still_says_when():
    xml = document(_feed())
    assert ET.fromstring(xml).find(A + "updated").text == EPOCH
    assert not feedparser.parse(xml).bozo
