"""What clients ask the write side to do, and what it answers.

Request bodies are decoded straight into these Structs: unknown fields and wrong types are
refused before any handler runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec


def _documented(description: str | None = None, **limits: object) -> msgspec.Meta:
    """Limits the OpenAPI document states but decoding does not enforce: the domain checks
    them after normalising (service/domain/text.py) and answers 422 with a clear detail."""
    return msgspec.Meta(extra_json_schema={"description": description, "extra": limits})


_NORMALISED = ("counted once control characters are removed and line breaks made '\\n'"
               " (titles: spaces collapsed); empty then is 422")
Title = Annotated[str, _documented(_NORMALISED, min_length=1, max_length=200)]
Body = Annotated[str, _documented(_NORMALISED, min_length=1, max_length=50_000)]
Name = Annotated[str, _documented(min_length=1, max_length=32)]
Password = Annotated[str, _documented(min_length=8, max_length=1024)]
Slug = Annotated[str, _documented(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
Role = Annotated[str, _documented(enum=["member", "moderator"])]


class Request(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class CreateForum(Request, frozen=True):
    slug: Slug
    title: Title


class StartThread(Request, frozen=True):
    title: Title
    body: Body
    guest_name: Name | None = None


class PostReply(Request, frozen=True):
    body: Body
    guest_name: Name | None = None


class BumpThread(Request, frozen=True):
    guest_name: Name | None = None


class EditPost(Request, frozen=True):
    body: Body


class MoveThread(Request, frozen=True):
    forum: Slug


class Register(Request, frozen=True):
    name: Name
    password: Password


class ChangeRole(Request, frozen=True):
    role: Role


class SignIn(Request, frozen=True):
    name: Name
    password: Password


class Suspend(Request, frozen=True):
    reason: str
    until: datetime | None = None  # None: until a moderator lifts it


class EraseMember(Request, frozen=True):
    """``content`` "keep": the posts stay under a pseudonym; "erase": their bodies go too.
    ``password``: the member's own, when the member asks (not the operator)."""

    content: Literal["keep", "erase"]
    password: Password | None = None


class Result(msgspec.Struct, kw_only=True, omit_defaults=True):
    position: int = 0


class ForumCreatedResult(Result):
    slug: str
    title: str


class ThreadStartedResult(Result):
    thread_id: int
    post_id: int
    number: int = 1
    page: int = 1


class ReplyResult(Result):
    thread_id: int
    post_id: int
    number: int
    page: int


class ThreadChangedResult(Result):
    thread_id: int


class PostChangedResult(Result):
    post_id: int
    thread_id: int


class MemberResult(Result):
    name: str
    role: str = "member"


class ErasureResult(Result):
    """The erasure is done in the log at ``position``; pages and the API show it once the
    workers have rebuilt the read models from the rewritten log (``forum status`` shows
    the rebuild). Names only the pseudonym."""

    pseudonym: str
    content: str
    events_rewritten: int


class SuspensionResult(Result, omit_defaults=False):
    name: str
    suspended: bool
    until: datetime | None = None
    reason: str | None = None


class HeldResult(Result):
    """A post held for review (answered with 202): ``held_id`` is its id in /api/held and
    the post id it keeps when approved."""

    held: bool  # always True; present so clients can tell it from a published post
    held_id: int
    thread_id: int
    guest_token: str | None = None


class ApprovedResult(Result):
    post_id: int
    number: int
    thread_id: int
    page: int


class RejectedResult(Result):
    id: int
    thread_id: int
