"""Members, guests and sections (service/domain/members.py, sections.py, text.py): no I/O."""

from __future__ import annotations

import pytest

from events.members import MemberRegistered
from events.records import member_stream
from events.sections import ForumCreated
from service.domain import members, sections
from service.domain.actors import OPERATOR
from service.domain.errors import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NameTakenError,
)
from service.domain.text import NAME_MAX, check_slug, clean_name
from tests.builders import NOW, forum_created, guest, member, member_registered, moderator


def register(name: str, existing=(), password: str = "correct horse"):
    return members.register(list(existing), name=name, password=password, now=NOW)


# -- registration ---------------------------------------------------------------------

def test_register_records_the_member_with_role_member():
    (registered,) = register("Ann")
    assert isinstance(registered, MemberRegistered)
    assert (registered.name, registered.role) == ("Ann", "member")
    assert not hasattr(registered, "password_hash")  # a credential, kept out of the log


def test_register_a_taken_name_is_refused():
    with pytest.raises(NameTakenError):
        register("ann", [member_registered("Ann")])


def test_name_taken_is_a_conflict():
    assert issubclass(NameTakenError, ConflictError)


@pytest.mark.parametrize("password", ["", "short", "x" * 7, "x" * 1025])
def test_password_outside_8_to_1024_characters_is_refused(password):
    with pytest.raises(InvalidInputError, match="password"):
        register("ann", password=password)


def test_member_streams_are_keyed_case_insensitively():
    assert member_stream("Ann") == member_stream("aNN") == member_stream("ANN")


# -- names ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ann", "Ann Lee", "a", "jean-luc", "j.r.r", "x_y", "Zoë",
                                  "x" * NAME_MAX])
def test_valid_names_are_accepted(name):
    assert clean_name(name) == name


def test_name_whitespace_is_collapsed():
    assert clean_name("  ann   lee ") == "ann lee"


@pytest.mark.parametrize("name", ["", "   ", "x" * (NAME_MAX + 1), "-ann", "ann-", "a__b",
                                  "<script>", "ann\x00", "robert'); DROP TABLE", "a/b"])
def test_invalid_names_are_refused(name):
    with pytest.raises(InvalidInputError):
        clean_name(name)


@pytest.mark.parametrize("name", ["operator", "Operator", "GUEST", "admin", "Moderator"])
def test_reserved_names_are_refused(name):
    with pytest.raises(InvalidInputError, match="reserved"):
        clean_name(name)


# -- guests ---------------------------------------------------------------------------

def test_a_guest_with_a_free_name_becomes_a_guest_actor():
    actor = members.guest("visitor", [])
    assert (actor.name, actor.role, actor.guest) == ("visitor", "guest", True)


def test_guest_name_equal_to_a_members_name_is_taken():
    with pytest.raises(NameTakenError):
        members.guest("ann", [member_registered("ann")])


def test_guest_name_equal_to_a_members_name_in_another_case_is_taken():
    # The handler loads the member stream by the casefolded name, so "ANN" finds "ann".
    assert member_stream("ANN") == member_stream("ann")
    with pytest.raises(NameTakenError):
        members.guest("ANN", [member_registered("ann")])


def test_guest_name_follows_the_name_rules():
    with pytest.raises(InvalidInputError, match="guest_name"):
        members.guest("", [])
    with pytest.raises(InvalidInputError, match="reserved"):
        members.guest("operator", [])


# -- sections -------------------------------------------------------------------------

@pytest.mark.parametrize("actor", [OPERATOR, moderator()], ids=["operator", "moderator"])
def test_operator_and_moderators_create_sections(actor):
    (created,) = sections.create_forum([], slug="history", title=" History ", actor=actor,
                                       now=NOW)
    assert isinstance(created, ForumCreated)
    assert (created.slug, created.title, created.actor) == ("history", "History", actor.name)


@pytest.mark.parametrize("actor", [member(), guest()], ids=["member", "guest"])
def test_members_and_guests_may_not_create_sections(actor):
    with pytest.raises(ForbiddenError):
        sections.create_forum([], slug="history", title="History", actor=actor, now=NOW)


def test_creating_an_existing_section_is_refused():
    with pytest.raises(AlreadyExistsError):
        sections.create_forum([forum_created("history")], slug="history", title="History",
                              actor=OPERATOR, now=NOW)


@pytest.mark.parametrize("slug", ["", "History", "-history", "history-", "his tory", "a/b",
                                  "x" * 65, "ünï"])
def test_bad_slugs_are_refused(slug):
    with pytest.raises(InvalidInputError, match="slug"):
        sections.create_forum([], slug=slug, title="T", actor=OPERATOR, now=NOW)


def test_good_slugs_are_accepted():
    for slug in ("a", "history", "world-war-2", "x" * 64):
        assert check_slug(slug) == slug


@pytest.mark.parametrize("title", ["", " ", "x" * 201])
def test_section_titles_follow_the_title_rules(title):
    with pytest.raises(InvalidInputError, match="title"):
        sections.create_forum([], slug="history", title=title, actor=OPERATOR, now=NOW)


# -- standing and suspensions -----------------------------------------------------------

def test_standing_follows_role_changes_and_suspensions():
    from datetime import timedelta

    from events.members import MemberRoleChanged

    history = [member_registered("Ann")]
    assert members.standing(history) == members.Standing("Ann", "member")
    history.append(MemberRoleChanged(occurred_at=NOW, actor="operator", name="Ann",
                                     role="moderator"))
    history += members.suspend(history, "ann", until=NOW + timedelta(hours=1),
                               reason="  too   loud ", actor=OPERATOR, now=NOW)
    standing = members.standing(history)
    assert standing is not None and standing.role == "moderator"
    assert standing.suspended is not None and standing.suspended.reason == "too loud"
    assert members.suspension(standing, NOW) is standing.suspended
    # Over when its end has passed, with no event.
    assert members.suspension(standing, NOW + timedelta(hours=1)) is None
    history += members.lift_suspension(history, "Ann", actor=OPERATOR,
                                       now=NOW + timedelta(minutes=1))
    assert members.suspension(members.standing(history), NOW) is None


def test_suspension_rules():
    from datetime import timedelta

    ann = [member_registered("Ann")]
    mod = [member_registered("Mo", role="moderator")]
    with pytest.raises(ForbiddenError):
        members.suspend(ann, "Ann", until=None, reason="r", actor=member(), now=NOW)
    with pytest.raises(ForbiddenError):
        members.suspend(mod, "Mo", until=None, reason="r", actor=moderator(), now=NOW)
    with pytest.raises(ForbiddenError):
        members.suspend([], "operator", until=None, reason="r", actor=moderator(), now=NOW)
    with pytest.raises(InvalidInputError):
        members.suspend(ann, "Ann", until=NOW, reason="r", actor=moderator(), now=NOW)
    with pytest.raises(InvalidInputError):
        members.suspend(ann, "Ann", until=None, reason=" ", actor=moderator(), now=NOW)
    with pytest.raises(ConflictError):
        members.lift_suspension(ann, "Ann", actor=moderator(), now=NOW)
    (event,) = members.suspend(mod, "Mo", until=NOW + timedelta(days=1), reason="r",
                               actor=OPERATOR, now=NOW)
    with pytest.raises(ConflictError):  # its end has passed: nothing to lift
        members.lift_suspension([*mod, event], "Mo", actor=OPERATOR,
                                now=NOW + timedelta(days=2))
    with pytest.raises(ForbiddenError):
        members.check_not_suspended(members.standing([*mod, event]), NOW)
