"""The post controls a viewer is shown (service/web/posts.py), by the same rules the
decisions refuse by; and what the thread page projection keeps for them: each edit's
version (the history readers see) and who likes which post."""

from __future__ import annotations

from datetime import UTC, datetime

from events.threads import PostEdited, PostLiked, PostUnliked
from service.domain.actors import Actor
from service.web.posts import Viewer, controls_html
from workers.batch import Batch
from workers.projections.thread_page import ThreadPage, post_prefix
from workers.readmodels import Namespace, stored_posts
from workers.readmodels.values import PostHead

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ANN = Actor("Ann", "member")
BOB = Actor("Bob", "member")
MOD = Actor("Mo", "moderator")
GUEST = Actor("Ann", "guest", guest_id="x")


def head(author: str = "ann", *, guest: bool = False, deleted: bool = False) -> PostHead:
    stored = post_prefix(7, 3, 2, NOW, None, deleted, "hi", [], author, guest, False)
    return stored_posts.decode(stored, 3, 2)


def test_the_author_may_edit_and_delete_but_not_like_their_own_post():
    shown = controls_html(head(), False, Viewer(ANN))
    assert 'href="/posts/7/edit"' in shown and 'href="/posts/7/delete"' in shown
    assert "/like" not in shown and "/unlike" not in shown


def test_another_member_may_like_or_unlike_but_not_change_it():
    shown = controls_html(head(), False, Viewer(BOB))
    assert 'action="/posts/7/like"' in shown and "/edit" not in shown and "/delete" not in shown
    assert 'action="/posts/7/unlike"' in controls_html(head(), False, Viewer(BOB, frozenset({2})))
    # every button is a form carrying the page's CSRF token
    assert 'name="_csrf_token"' in shown


def test_a_moderator_may_change_and_like_anyones_post_and_edit_in_a_locked_thread():
    shown = controls_html(head(), True, Viewer(MOD))
    assert all(part in shown for part in ("/posts/7/edit", "/posts/7/delete", "/posts/7/like"))


def test_in_a_locked_thread_the_author_may_delete_but_not_edit():
    shown = controls_html(head(), True, Viewer(ANN))
    assert "/delete" in shown and "/edit" not in shown


def test_guests_and_deleted_posts_get_no_controls():
    assert controls_html(head(), False, None) == ""
    assert controls_html(head(deleted=True), False, Viewer(MOD)) == ""
    # a guest's post: a guest identity never changes it from the pages (guests cannot edit)
    assert "/edit" not in controls_html(head("Ann", guest=True), False, Viewer(GUEST))
    assert controls_html(head(), False, Viewer(Actor("operator", "operator"))).count(
        "/like") == 0


T3 = Namespace("p:thread_page:v3").thread(3)


def _commands(*events: object) -> list[tuple[str | bytes, ...]]:
    projection, ns, batch = ThreadPage(), Namespace("p:thread_page:v3"), Batch()
    for event in events:
        projection.handlers[type(event)](event, ns, batch)
    return batch.commands()


def _edit(body: str, at: datetime) -> PostEdited:
    return PostEdited(occurred_at=at, actor="Ann", thread_id=3, post_id=7, number=2,
                      author="Ann", guest=False, op=False, created_at=NOW, body=body)


def test_each_edit_keeps_its_version_beside_the_page():
    later = datetime(2024, 5, 7, tzinfo=UTC)
    commands = _commands(_edit("one", NOW), _edit("two", later))
    pushed = [c for c in commands if c[0] == "RPUSH" and c[1] == f"{T3}:r:2"]
    assert len(pushed) == 1 and len(pushed[0]) == 4  # both versions, oldest first
    versions = [stored_posts.decode(v, 3, 2) for v in pushed[0][2:]]
    assert [v.body for v in versions] == ["one", "two"]
    assert versions[1].edited_at == "2024-05-07T00:00:00.000Z"


def test_likers_are_kept_by_number_and_folded_name():
    like = PostLiked(occurred_at=NOW, actor="BOB", thread_id=3, post_id=7, number=2,
                     author="Ann", guest=False, likes=1)
    # (the score is 0, written "0" or "0.0": compiled, the batch formats floats so)
    assert any(c[:2] == ("ZADD", f"{T3}:likers") and c[3] == "2:bob"
               for c in _commands(like))
    unlike = PostUnliked(occurred_at=NOW, actor="Bob", thread_id=3, post_id=7, number=2,
                         author="Ann", guest=False, likes=0)
    assert ("ZREM", f"{T3}:likers", "2:bob") in _commands(unlike)
    # a like taken back in the same batch leaves the member out
    assert not any(c[0] == "ZADD" and c[1] == f"{T3}:likers"
                   for c in _commands(like, unlike))


def test_a_deleted_posts_versions_go_with_it():
    from events.threads import PostDeleted

    deleted = PostDeleted(occurred_at=NOW, actor="Ann", thread_id=3, forum="f", post_id=7,
                          number=2, author="Ann", guest=False, op=False, created_at=NOW,
                          edited_at=NOW)
    commands = _commands(_edit("one", NOW), deleted)
    assert ("DEL", f"{T3}:r:2") in commands
    assert not any(c[0] == "RPUSH" and c[1] == f"{T3}:r:2" for c in commands)
    # an edit after the deletion (never decided, but a batch keeps the order) comes after
    batch = Batch()
    batch.rpush("k", "a")
    batch.drop_list("k")
    batch.rpush("k", "b")
    assert batch.commands() == [("DEL", "k"), ("RPUSH", "k", "b")]
