"""BBCode -> safe HTML rendering and quote-reference extraction for post bodies.

Pure module (no I/O). Formatting is done by the ``bbcode`` library's ``Parser`` (tag
formatters, nesting, escaping, newline handling), configured and subclassed so that:

* every piece of user text and every attribute value is HTML-escaped; control characters
  other than tab and newline are dropped;
* only ``[b]``, ``[i]``, ``[url]`` and ``[quote]`` are recognised; anything else is literal
  text; stray closing tags are dropped and unclosed tags are closed at the end of their
  enclosing tag (or of the body);
* cosmetic replacements (``--``, ``...``, ``(c)``) and bare-URL linkification are off;
* tokenizing is done here with one regex pass (the library scans character by character and
  emits a token per ``[``), tag matching is precomputed once per body (the library rescans
  forward for every tag, quadratic on adversarial input), nesting depth and tag count are
  capped (beyond the caps tags render as literal text), so a 50,000-character body renders
  in a few milliseconds and never hits the recursion limit;
* tag options are parsed here, not by the library (whose option parser splits
  ``[quote=John Smith post=1]`` at the space). Tags cannot contain ``[``, ``]`` or newlines,
  so a quoted quote name containing ``]`` is not supported.

Output contains only ``strong``, ``em``, ``a``, ``blockquote``, ``div`` and ``br`` elements
with ``href``/``rel``/``class``/``data-post`` attributes, and every element opened is closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import bbcode as _bbcode
import msgspec

from common.characters import drop_controls
from common.html_text import escape, plain, tagless_html

__all__ = ["QuoteRef", "QuoteTag", "quote_refs", "quote_tags", "render"]


class QuoteRef(msgspec.Struct, frozen=True):
    """A ``[quote=NAME post=ID]`` reference to another post."""

    name: str
    post_id: int


# A token as produced by bbcode.Parser.tokenize: (type, tag_name, options, original text).
_Token = tuple[int, str | None, dict[str, str] | None, str]

_TOKEN_TAG_START: int = _bbcode.Parser.TOKEN_TAG_START
_TOKEN_TAG_END: int = _bbcode.Parser.TOKEN_TAG_END
_TOKEN_NEWLINE: int = _bbcode.Parser.TOKEN_NEWLINE
_TOKEN_DATA: int = _bbcode.Parser.TOKEN_DATA

# Tags nested deeper than this render their contents as literal (escaped) text.
_MAX_TAG_DEPTH = 24
# Tags (text between "[" and "]") longer than this are literal text.
_MAX_TAG_LEN = 2048
# Recognised tags after this many in one body are literal text (bounds rendering time).
_MAX_TAGS = 5000
# Post ids are PostgreSQL bigints.
_MAX_POST_ID = 2**63 - 1

_TAG_RE = re.compile(rf"\[[^\[\]\n]{{1,{_MAX_TAG_LEN}}}\]")
_TAG_NAME_RE = re.compile(r"[^\s=\]]*")
# Possessive quantifiers: giving back whitespace or a word can never make this match, and
# trying it made a 2,000-character tag of spaces cost millions of steps.
_POST_OPT_RE = re.compile(r"(?:^|\s)post\s*+=\s*+(\S*+)\s*+\Z", re.IGNORECASE)
_SAFE_URL_RE = re.compile(r"(?:https?://|mailto:)\S+", re.IGNORECASE)
_WHITESPACE_RE = re.compile(r"\s")

_FLAT_TAGS = frozenset({"url"})  # tags whose contents are not parsed for nested tags


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def _parse_post_id(raw: str) -> int | None:
    raw = _unquote(raw)
    if not raw.isascii() or not raw.isdigit():
        return None
    digits = raw.lstrip("0")
    if not digits or len(digits) > 19:
        return None
    post_id = int(digits)
    return post_id if post_id <= _MAX_POST_ID else None


def _parse_quote_options(rest: str) -> dict[str, str] | None:
    """Options of a ``[quote...]`` tag from the text after ``quote``; None if malformed.

    Returns ``{"name": NAME}`` (possibly empty) plus ``"post": ID`` when a valid id is given.
    """
    opts: dict[str, str] = {}
    match = _POST_OPT_RE.search(rest)
    if match is not None:
        post_id = _parse_post_id(match.group(1))
        if post_id is not None:
            opts["post"] = str(post_id)
        rest = rest[: match.start()]
    rest = rest.strip()
    if not rest:
        opts["name"] = ""
    elif rest.startswith("="):
        opts["name"] = _unquote(rest[1:])
    else:
        return None
    return opts


def _safe_href(raw: str) -> str | None:
    """The URL if it is an http/https/mailto URL without embedded whitespace, else None."""
    url = raw.strip()
    if _WHITESPACE_RE.search(url) is not None or _SAFE_URL_RE.fullmatch(url) is None:
        return None
    return url


def _render_b(_name: str, value: str, _opts: Any, _parent: Any, _ctx: Any) -> str:
    return f"<strong>{value}</strong>"


def _render_i(_name: str, value: str, _opts: Any, _parent: Any, _ctx: Any) -> str:
    return f"<em>{value}</em>"


def _render_url(_name: str, value: str, opts: dict[str, str], _parent: Any, _ctx: Any) -> str:
    # The url tag has escape_html=False and render_embedded=False, so ``value`` is the raw
    # text between the tags (with newlines already turned into "\r" markers).
    if "url" in opts:
        href = _safe_href(opts["url"])
        text = value if value.strip() else opts["url"]
    else:
        href = _safe_href(value)
        text = value
    if href is None:
        return escape(text)
    return f'<a href="{escape(href)}" rel="nofollow ugc">{escape(text)}</a>'


def _render_quote(_name: str, value: str, opts: dict[str, str], _parent: Any, _ctx: Any) -> str:
    post = opts.get("post")
    data_post = f' data-post="{escape(post)}"' if post else ""
    name = opts.get("name", "")
    author = f'<div class="quote-author">{escape(name)} wrote:</div>' if name else ""
    return (
        f'<blockquote class="quote"{data_post}>{author}'
        f'<div class="quote-body">{value}</div></blockquote>'
    )


class _Parser(_bbcode.Parser):  # type: ignore[misc]
    """A bbcode.Parser with linear-time tokenizing/matching and strict tag-option parsing.

    Holds per-document state (tag matches): use one instance per document.
    """

    def __init__(self) -> None:
        super().__init__(
            newline="<br>",
            install_defaults=False,
            escape_html=True,
            replace_links=False,
            replace_cosmetic=False,
            drop_unrecognized=False,
            max_tag_depth=_MAX_TAG_DEPTH,
        )
        common: dict[str, bool] = {
            "escape_html": True,
            "replace_links": False,
            "replace_cosmetic": False,
        }
        self.add_formatter("b", _render_b, **common)
        self.add_formatter("i", _render_i, **common)
        self.add_formatter(
            "quote", _render_quote, strip=True, swallow_trailing_newline=True, **common
        )
        self.add_formatter(
            "url",
            _render_url,
            render_embedded=False,
            escape_html=False,  # _render_url escapes the raw text itself
            replace_links=False,
            replace_cosmetic=False,
        )
        self._start_index: dict[int, int] = {}
        self._matches: dict[int, int] = {}

    def _parse_tag(self, tag: str) -> tuple[bool, str, bool, dict[str, str] | None]:
        invalid = (False, tag, False, None)
        if len(tag) > _MAX_TAG_LEN + 2 or not (tag.startswith("[") and tag.endswith("]")):
            return invalid
        if "\n" in tag:
            return invalid
        inner = tag[1:-1].strip()
        closer = inner.startswith("/")
        if closer:
            inner = inner[1:].strip()
        name_match = _TAG_NAME_RE.match(inner)
        raw_name = name_match.group(0) if name_match else ""
        tag_name = raw_name.lower()
        if not tag_name or tag_name not in self.recognized_tags:
            return invalid
        rest = inner[len(raw_name) :]
        if closer or tag_name in ("b", "i"):
            return (True, tag_name, closer, {}) if not rest.strip() else invalid
        if tag_name == "url":
            rest = rest.strip()
            if not rest:
                return (True, tag_name, False, {})
            if rest.startswith("="):
                return (True, tag_name, False, {"url": _unquote(rest[1:])})
            return invalid
        opts = _parse_quote_options(rest)
        return (True, tag_name, False, opts) if opts is not None else invalid

    def tokenize(self, data: str) -> list[_Token]:
        """Tokens in the library's format, in linear time.

        The library's tokenizer makes one token per "[" or text/newline fragment and scans
        character by character, which is far too slow on adversarial 50 kB bodies. Here a
        tag is "[" + up to _MAX_TAG_LEN characters other than "[", "]" and newline + "]";
        recognised tags become tag tokens (at most _MAX_TAGS of them), everything else is
        merged into DATA tokens (newlines inside DATA render exactly like NEWLINE tokens).
        A newline directly after a tag is kept as a NEWLINE token so that block tags can
        swallow it.
        """
        tokens: list[_Token] = []
        text_start = 0

        def add_text(end: int) -> None:
            if end <= text_start:
                return
            begin = text_start
            if tokens and data[begin] == "\n":
                tokens.append((_TOKEN_NEWLINE, None, None, "\n"))
                begin += 1
            if end > begin:
                tokens.append((_TOKEN_DATA, None, None, data[begin:end]))

        for match, tag_name, closer, opts in _recognised(data):
            add_text(match.start())
            kind = _TOKEN_TAG_END if closer else _TOKEN_TAG_START
            tokens.append((kind, tag_name, None if closer else opts, match.group(0)))
            text_start = match.end()
        add_text(len(data))

        # Precompute each start tag's closing tag exactly as the library's
        # _find_closing_token would find it (per-name bracket matching; for flat tags the
        # first closing tag), so that lookups are O(1) instead of a forward scan.
        self._start_index = {}
        self._matches = {}
        open_tags: dict[str, list[int]] = {}
        for index, token in enumerate(tokens):
            kind, name = token[0], token[1]
            if name is None:
                continue
            if kind == _TOKEN_TAG_START:
                self._start_index[id(token)] = index
                open_tags.setdefault(name, []).append(index)
            elif kind == _TOKEN_TAG_END:
                pending = open_tags.get(name)
                if not pending:
                    continue
                if name in _FLAT_TAGS:
                    for start in pending:
                        self._matches[start] = index
                    pending.clear()
                else:
                    self._matches[pending.pop()] = index
        return tokens

    def _find_closing_token(self, tag: Any, tokens: list[_Token], pos: int) -> tuple[int, bool]:
        # tokens is a contiguous slice of the tokenized document and tokens[pos - 1] is the
        # start tag being closed; its closing tag is either inside the slice or treated as
        # the slice's end (which closes the tag there).
        start = self._start_index[id(tokens[pos - 1])]
        offset = start - (pos - 1)
        end = self._matches.get(start)
        if end is None or end - offset >= len(tokens):
            return len(tokens), True
        return end - offset, True


def _render_markup(body: str) -> str:
    html = tagless_html(body)
    if html is not None:
        return html
    html_out: str = _Parser().format(drop_controls(body))
    return html_out


def _render_fallback(body: str) -> str:
    return plain(drop_controls(body))


def render(body: str) -> str:
    """BBCode -> safe HTML. Never raises."""
    try:
        return _render_markup(body)
    except Exception:  # defensive: the contract is "never raises"; degrade to escaped text
        return _render_fallback(body)


_tag_parser: _Parser | None = None


def _tag_reader() -> _Parser:
    """One parser for reading tags (``_parse_tag`` keeps no state): building one
    registers every formatter again."""
    global _tag_parser
    if _tag_parser is None:
        _tag_parser = _Parser()
    return _tag_parser


def _recognised(text: str) -> Iterator[tuple[re.Match[str], str, bool, dict[str, str] | None]]:
    """The tags of ``text`` the renderer recognises, as ``_Parser.tokenize`` reads them
    (each distinct tag parsed once; past ``_MAX_TAGS`` the rest are text): the match, the
    tag's name, whether it closes, its options."""
    reader = _tag_reader()
    parsed: dict[str, tuple[bool, str, bool, dict[str, str] | None]] = {}
    tag_count = 0
    for match in _TAG_RE.finditer(text):
        tag = match.group(0)
        result = parsed.get(tag)
        if result is None:
            result = parsed[tag] = reader._parse_tag(tag)
        valid, tag_name, closer, opts = result
        if not valid:
            continue
        tag_count += 1
        if tag_count > _MAX_TAGS:  # as tokenize: the tags beyond are text
            return
        yield match, tag_name, closer, opts


def _quote_refs(body: str) -> list[QuoteRef]:
    """The quote references as ``_Parser().tokenize`` sees the tags (the renderer's
    reading), without building a parser or tokens: a post is decided on every write and
    every import, and most posts quote nothing."""
    refs: list[QuoteRef] = []
    seen: set[int] = set()
    # A tag's name is matched lowercased: no "quote" in the lowercased text, no quote tag.
    # Dropping controls cannot make a "q" (nor does lowercasing anything but "Q"), so a
    # body without one needs not even that.
    if "[" not in body or "q" not in body.lower():
        return refs
    text = drop_controls(body)
    if "quote" not in text.lower():
        return refs
    for _, tag_name, closer, opts in _recognised(text):
        if closer or tag_name != "quote" or not opts:
            continue
        name, post = opts.get("name"), opts.get("post")
        if not name or not post:
            continue
        post_id = int(post)
        if post_id not in seen:
            seen.add(post_id)
            refs.append(QuoteRef(name=name, post_id=post_id))
    return refs


def quote_refs(body: str) -> list[QuoteRef]:
    """Every ``[quote=NAME post=ID]`` opening tag in ``body``, in order, deduplicated by post id.

    Plain ``[quote]``, ``[quote=NAME]`` and tags with a malformed or out-of-range id are not
    references. Never raises.
    """
    try:
        return _quote_refs(body)
    except Exception:  # defensive: the contract is "never raises"
        return []


class QuoteTag(msgspec.Struct, frozen=True):
    """A ``[quote…]`` or ``[/quote]`` tag as the renderer reads it: where it is in the
    body, and an opener's ``name`` and ``post`` (None when the tag gives none)."""

    start: int
    end: int
    closer: bool
    name: str = ""
    post: int | None = None


def quote_tags(body: str) -> list[QuoteTag]:
    """The quote tags of ``body`` in order, recognised exactly as ``render`` recognises
    them (a rewrite of attributions must find the tags the pages show). Linear: one regex
    pass, each candidate parsed once."""
    if "[" not in body:
        return []
    found: list[QuoteTag] = []
    # Stored bodies hold no control characters (service/domain/text.py drops them), so
    # the renderer's drop_controls changes nothing and positions are the body's own.
    for match, name, closer, opts in _recognised(body):
        if name != "quote":
            continue
        if closer:
            found.append(QuoteTag(match.start(), match.end(), True))
            continue
        post = (opts or {}).get("post")
        found.append(QuoteTag(match.start(), match.end(), False, (opts or {}).get("name", ""),
                              int(post) if post else None))
    return found
