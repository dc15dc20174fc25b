"""What a page of the log changes in the search model: pure, no I/O (the sink writes it).

The search model holds a document per visible post (its words, its thread's title on the
opening post, its section and author) and the title of each thread. Only the events that
change what a reader can find are read:

* ``ThreadStarted``: a thread's title and section;
* ``PostAdded``: a document (a held post becomes one only when approved, which appends
  its ``PostAdded``: held, rejected and never-approved posts are never found);
* ``PostEdited``: its words replaced, so an edited-away word is no longer found;
* ``PostDeleted``: the document removed (the log keeps the text; search forgets it);
* ``ThreadMoved``: every post of the thread filed under its new section.

An erasure is not read here: it rewrote events already read, so the whole model is
rebuilt from the rewritten log (workers/erasures.py), as the Redis read models are.

Changes are coalesced per post as they are queued, so a batch writes each post once
whatever happened to it: a post added and edited in one page is inserted with its last
words, one added and deleted is not written at all. The sink applies them in the order
threads, new posts, edits, deletions, moves, which gives what applying the events one by
one would: edits and deletions only reach posts already stored (those of this page were
settled here), and a move files every post of its thread and the thread itself under the
section it moved to last, this page's new ones included (a post written after the move
carries that section already: ``PostAdded.forum``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from common.search_text import searchable_text
from events import ForumEvent
from events.threads import PostAdded, PostDeleted, PostEdited, ThreadMoved, ThreadStarted


@dataclass
class NewPost:
    post_id: int
    thread_id: int
    number: int
    forum: str
    author: str
    guest: bool
    created_at: datetime
    text: str


@dataclass
class Changes:
    threads: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (forum, title)
    posts: dict[int, NewPost] = field(default_factory=dict)  # added in this page
    edits: dict[int, str] = field(default_factory=dict)  # stored posts' new words
    deletes: set[int] = field(default_factory=set)
    moves: dict[int, str] = field(default_factory=dict)  # thread id -> its new section

    def __bool__(self) -> bool:
        return bool(self.threads or self.posts or self.edits or self.deletes or self.moves)


def changes(feed: list[tuple[int, ForumEvent]]) -> Changes:
    """What ``feed`` (a page of the log above the model's checkpoint) changes."""
    out = Changes()
    for _, event in feed:
        kind = event.__class__
        if kind is PostAdded:
            assert isinstance(event, PostAdded)
            out.posts[event.post_id] = NewPost(
                event.post_id, event.thread_id, event.number, event.forum, event.author,
                event.guest, event.occurred_at, searchable_text(event.body))
        elif kind is PostEdited:
            assert isinstance(event, PostEdited)
            pending = out.posts.get(event.post_id)
            if pending is not None:
                pending.text = searchable_text(event.body)
            elif event.post_id not in out.deletes:  # a deleted post is not edited again
                out.edits[event.post_id] = searchable_text(event.body)
        elif kind is PostDeleted:
            assert isinstance(event, PostDeleted)
            out.posts.pop(event.post_id, None)
            out.edits.pop(event.post_id, None)
            out.deletes.add(event.post_id)
        elif kind is ThreadStarted:
            assert isinstance(event, ThreadStarted)
            out.threads[event.thread_id] = (event.forum, event.title)
        elif kind is ThreadMoved:
            assert isinstance(event, ThreadMoved)
            out.moves[event.thread_id] = event.to_forum  # the last move of the page wins
    return out
