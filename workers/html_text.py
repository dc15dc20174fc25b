"""User text made safe for HTML: escaping, dropping control characters, line breaks, and
the whole HTML of a body without BBCode tags (most posts), the parser's result made
without it. Pure and compiled (workers/native.py); the parser is in workers/bbcode.py.
"""

from __future__ import annotations

import re
from typing import Final

# \r\n and \r become \n; all other C0/C1 controls except \t and \n, and lone surrogates
# (which cannot be encoded as UTF-8), are removed. The pattern is raw because a compiled
# module cannot hold surrogates in a string literal: the regex spells them out.
_NEWLINES_RE: Final = re.compile(r"\r\n?")
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def escape(text: str) -> str:
    # A replace per character, skipped when absent: several times faster than
    # str.translate with multi-character replacements, which goes character by character.
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "'" in text:
        text = text.replace("'", "&#39;")
    return text


def clean(body: str) -> str:
    if _CONTROL_RE.search(body) is None:  # the usual case; \r is a control too
        return body
    return _CONTROL_RE.sub("", _NEWLINES_RE.sub("\n", body))


def plain(text: str) -> str:
    """Escaped text with line breaks: byte for byte what the parser makes of a body
    without tags, at a fraction of the cost."""
    return escape(text).replace("\n", "<br>")


def tagless_html(body: str) -> str | None:
    """The HTML of a body holding no ``[``, hence no tags; None for any other body."""
    if "[" in body:
        return None
    html = plain(body)
    # The escaped text is printable bar tabs exactly when the body holds nothing for
    # clean() to remove (every such character is unprintable; escaping adds none and
    # plain() took the newlines out): then clean(body) is body, and this its HTML.
    if html.isprintable() or html.replace("\t", "").isprintable():
        return html
    return plain(clean(body))
