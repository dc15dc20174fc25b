"""Atom documents (RFC 4287), written out here: a feed is a dozen element kinds, and
the standard library's escaping is all it needs (a feed library would add a dependency to
write what fits on a page, and none of them reads our stored HTML any better).

Pure: values in, bytes out. Every text goes through ``_text`` (XML-escaped, and stripped
of the characters XML 1.0 cannot hold at all, which no escaping can carry); a post's HTML
goes in as ``<content type="html">``, escaped once: it is our own sanitised HTML
(common/bbcode.py), so a reader that shows it shows what the thread page shows.
"""

from __future__ import annotations

import re
from typing import Final
from xml.sax.saxutils import escape, quoteattr

import msgspec

ATOM: Final = "application/atom+xml; charset=utf-8"
# What XML 1.0 allows (its Char production); anything else is dropped.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# An empty feed's <updated>: a feed must have one, and it may not change while nothing
# else does (the feed's ETag names its state, not a clock).
EPOCH: Final = "1970-01-01T00:00:00Z"


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # an absolute IRI that never changes
    title: str
    link: str  # the entry's page (absolute)
    author: str
    published: str  # RFC 3339
    updated: str  # RFC 3339
    html: str  # the content, HTML (escaped into the document)


class Feed(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    self_link: str  # the feed's own address
    page_link: str  # the page it follows
    entries: list[Entry]
    updated: str = ""  # at least this (and at least every entry's); none at all: EPOCH


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


def _attr(value: str) -> str:
    return quoteattr(_NOT_XML.sub("", value))


def _entry(entry: Entry) -> str:
    return (
        "<entry>"
        f"<id>{_text(entry.id)}</id>"
        f"<title type=\"text\">{_text(entry.title)}</title>"
        f"<link rel=\"alternate\" type=\"text/html\" href={_attr(entry.link)}/>"
        f"<author><name>{_text(entry.author)}</name></author>"
        f"<published>{_text(entry.published)}</published>"
        f"<updated>{_text(entry.updated)}</updated>"
        f"<content type=\"html\">{_text(entry.html)}</content>"
        "</entry>\n"
    )


def document(feed: Feed) -> str:
    """The feed as an Atom document (to be sent as UTF-8)."""
    updated = max([e.updated for e in feed.entries] + [feed.updated or EPOCH])
    return "".join((
        '<?xml version="1.0" encoding="utf-8"?>\n',
        '<feed xmlns="http://www.w3.org/2005/Atom">\n',
        f"<id>{_text(feed.id)}</id>\n",
        f"<title type=\"text\">{_text(feed.title)}</title>\n",
        f"<updated>{_text(updated)}</updated>\n",
        f"<link rel=\"self\" type=\"application/atom+xml\" href={_attr(feed.self_link)}/>\n",
        f"<link rel=\"alternate\" type=\"text/html\" href={_attr(feed.page_link)}/>\n",
        "<generator>forum</generator>\n",
        *(_entry(entry) for entry in feed.entries),
        "</feed>\n",
    ))
