"""Demo data for ``forum dev``: the reference thread and a few threads that show the rest.

The reference thread (API.md, "The reference page") is the project's own data file,
service/demo_data/reference_thread.json, in the shape of a ``forum import`` line
(service/import_lines.py): section "history", 21 posts from 2011, 2018 and 2024 whose
replies quote earlier posts by their ``id`` in the file. Beside it: an unanswered thread,
a locked thread and a thread long enough for several pages.

Loading goes through the importer, so the posts keep their original times and the thread
is bumped as the API would have bumped it; ``load`` is idempotent (the importer's line
keys), and locks the threads listed in ``LOCKED`` once.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources

import msgspec

from events.postgres import PostgresEventStore
from events.records import thread_stream
from service.domain import threads
from service.domain.actors import OPERATOR
from service.import_lines import ImportedThread, line_key, parse
from service.importer import Importer, Report

REFERENCE_FILE = "reference_thread.json"
LONG_THREAD_POSTS = 60  # > per_page (25): three pages

_THREADS: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    ("history", "Sources on the Hanseatic League", [
        ("Kate", "2019-04-02T08:00:00Z", "Looking for [i]primary[/i] sources in English."),
        ("Lars", "2019-04-02T10:30:00Z", "Try [url=https://en.wikipedia.org/]Wikipedia[/url] "
         "first, then its bibliography."),
    ]),
    ("science", "Why is the sky blue?", [  # unanswered
        ("Newt", "2023-01-10T12:00:00Z", "Rayleigh scattering, but why not violet?"),
    ]),
    ("off-topic", "Introduce yourself", [
        ("admin2", "2015-05-05T05:05:00Z", "Say hello!"),
        ("Kate", "2015-05-06T07:00:00Z", "Hello from Lübeck."),
        ("Newt", "2021-11-11T11:11:00Z", "Hi all <3"),
    ]),
    ("off-topic", "Board rules: please read before posting", [  # locked
        ("admin2", "2012-01-15T10:00:00Z",
         "[b]Be civil[/b], stay on topic, cite your sources. Guests are welcome."),
        ("Kate", "2012-01-15T12:30:00Z", "May we link to our own blogs?"),
        ("admin2", "2012-01-16T09:00:00Z",
         "[quote=Kate post=2]May we link to our own blogs?[/quote]\nYes, when it helps "
         "the discussion. Locking this thread: please ask in a new one."),
    ]),
]

LOCKED = ("Board rules: please read before posting",)
LONG_TITLE = "Word association, one word per post"


def reference_thread() -> ImportedThread:
    """The reference thread as the demo ships it, parsed and checked as an import line."""
    raw = resources.files("service.demo_data").joinpath(REFERENCE_FILE).read_bytes()
    return parse(raw)


def _long_thread() -> dict[str, object]:
    """A thread of ``LONG_THREAD_POSTS`` posts over two years, for the pager."""
    words = ["river", "bridge", "toll", "tax", "census", "Rome", "road", "map", "compass",
             "north", "star", "navigation", "ship", "harbour", "Hansa", "trade", "salt",
             "herring", "Lent", "spring"]
    authors = ["Kate", "Lars", "Newt", "Pirenne"]
    posts = []
    for i in range(LONG_THREAD_POSTS):
        day = 1 + i * 12  # every twelve days from 1 Mar 2020
        month, mday = divmod(day - 1, 28)
        year = 2020 + month // 12
        posts.append({"id": i + 1, "author": authors[i % len(authors)],
                      "created_at": f"{year}-{month % 12 + 1:02d}-{mday + 1:02d}T18:00:00Z",
                      "body": words[i % len(words)] if i else "I start: [b]river[/b]."})
    return {"forum": "off-topic", "title": LONG_TITLE, "posts": posts}


def lines() -> list[bytes]:
    """The demo as ``forum import`` lines, the reference thread first."""
    out = [msgspec.json.encode(reference_thread())]
    for forum, title, posts in _THREADS:
        out.append(msgspec.json.encode({
            "forum": forum, "title": title,
            "posts": [{"author": a, "created_at": t, "body": b, "id": i}
                      for i, (a, t, b) in enumerate(posts, start=1)],
        }))
    out.append(msgspec.json.encode(_long_thread()))
    return out


async def thread_id(store: PostgresEventStore, line: bytes) -> int | None:
    """The id the import gave the thread of ``line`` (its idempotency record's answer)."""
    response = await store.pool.fetchval(
        "SELECT response FROM idempotency WHERE key = $1", line_key(parse(line)))
    if response is None:
        return None
    found: int = msgspec.json.decode(bytes(response))["thread_id"]
    return found


async def load(store: PostgresEventStore) -> Report:
    """Import the demo (what is there already is skipped) and lock what ``LOCKED`` names."""
    demo = lines()
    report = await Importer(store).lines(demo)
    for line in demo:
        thread = parse(line)
        if thread.title not in LOCKED:
            continue
        tid = await thread_id(store, line)
        if tid is None:
            continue
        stream = thread_stream(tid)
        recorded = await store.read_stream(stream)
        state = threads.fold(r.event for r in recorded)
        if state is None or state.locked:
            continue
        at = thread.posts[-1].created_at + timedelta(minutes=5)
        await store.append(stream, len(recorded), threads.set_locked(
            state, actor=OPERATOR, now=at, locked=True))
    return report
