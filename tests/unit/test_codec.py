"""Stored events: tags, round trips, and tolerance of fields from newer code."""

from __future__ import annotations

import msgspec
import pytest

from events import EVENT_TYPES, decode, encode, type_name
from events.threads import PostAdded, ThreadBumped
from tests.builders import NOW, new_id, one_of_each

# The stored tags. They are in every row of every event log ever written: renaming a class
# is fine, changing one of these strings is not.
PINNED_TAGS = {
    "ForumCreated": "forum_created",
    "ThreadStarted": "thread_started",
    "PostAdded": "post_added",
    "PostQuoted": "post_quoted",
    "ThreadBumped": "thread_bumped",
    "PostEdited": "post_edited",
    "PostDeleted": "post_deleted",
    "PostLiked": "post_liked",
    "PostUnliked": "post_unliked",
    "ThreadLocked": "thread_locked",
    "ThreadUnlocked": "thread_unlocked",
    "ThreadMoved": "thread_moved",
    "MemberRegistered": "member_registered",
    "MemberRoleChanged": "member_role_changed",
    "MemberSuspended": "member_suspended",
    "MemberSuspensionLifted": "member_suspension_lifted",
    "MemberErased": "member_erased",
    "StreamRedacted": "stream_redacted",
    "PostHeld": "post_held",
    "ThreadHeld": "thread_held",
    "HeldPostApproved": "held_post_approved",
    "HeldPostRejected": "held_post_rejected",
}

SAMPLES = one_of_each()


def test_event_tags_are_pinned():
    assert {cls.__name__: tag for tag, cls in EVENT_TYPES.items()} == PINNED_TAGS


def test_tags_are_snake_case():
    for tag in EVENT_TYPES:
        assert tag == tag.lower() and tag.replace("_", "").isalpha(), tag


def test_the_samples_cover_every_event_type():
    assert sorted(type_name(e) for e in SAMPLES) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type_name(e))
def test_every_event_type_round_trips(event):
    data = encode(event)
    assert decode(data) == event
    assert decode(data.decode()) == event


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type_name(e))
def test_encoded_events_are_json_objects_tagged_by_type(event):
    raw = msgspec.json.decode(encode(event))
    assert isinstance(raw, dict)  # never array_like: fields are named
    assert raw["type"] == type_name(event)
    assert raw["actor"] == "ann"
    assert raw["occurred_at"].startswith("2011-06-08T12:00:00")


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type_name(e))
def test_decode_tolerates_unknown_fields(event):
    raw = msgspec.json.decode(encode(event))
    raw["added_by_a_newer_release"] = {"nested": [1, 2, 3]}
    raw["another"] = None
    assert decode(msgspec.json.encode(raw)) == event


def test_decode_fills_defaults_of_fields_older_events_lack():
    raw = msgspec.json.decode(encode(SAMPLES[2]))
    del raw["quotes"]
    decoded = decode(msgspec.json.encode(raw))
    assert isinstance(decoded, PostAdded)
    assert decoded.quotes == []


def test_decode_of_an_unknown_tag_fails():
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"type": "thread_exploded", "occurred_at": "2011-06-08T12:00:00Z", '
               b'"actor": "x"}')


def test_times_keep_their_timezone_through_the_codec():
    event = ThreadBumped(occurred_at=NOW, actor="a", thread_id=new_id(), forum="f",
                         reason="reply")
    assert decode(encode(event)).occurred_at.utcoffset() is not None
    assert decode(encode(event)).occurred_at == NOW


def test_text_is_stored_verbatim():
    body = "<script>alert(1)</script> '; DROP TABLE events; -- \n\t \"quoted\" \\ ✓ 😀"
    event = SAMPLES[2]
    changed = msgspec.structs.replace(event, body=body)
    assert decode(encode(changed)).body == body


def test_a_page_of_events_decodes_in_one_pass_to_the_same_events():
    from events.codec import decode_many

    array = b"[" + b",".join(encode(e) for e in SAMPLES) + b"]"
    assert decode_many(array) == [decode(encode(e)) for e in SAMPLES]
    assert decode_many("[]") == []


def test_an_old_member_registered_with_its_password_hash_still_decodes_without_it():
    """Events written before migration 0007 carried the hash; a decoder meeting one (an
    old backup, a log not yet migrated) reads the member and drops the secret."""
    from events.codec import decode_many
    from events.members import MemberRegistered

    old = (b'{"type": "member_registered", "occurred_at": "2011-06-08T12:00:00Z",'
           b' "actor": "ann", "name": "ann", "role": "moderator",'
           b' "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$ZGlnZXN0"}')
    expected = MemberRegistered(occurred_at=NOW, actor="ann", name="ann", role="moderator")
    assert decode(old) == expected
    assert decode_many(b"[" + old + b"]") == [expected]
    assert b"argon2" not in encode(decode(old))
