"""What clients ask the write side to do, and what it answers.

Request bodies are decoded straight into these Structs: unknown fields and wrong types are
refused before any handler runs.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class Request(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class CreateForum(Request, frozen=True):
    slug: str
    title: str


class StartThread(Request, frozen=True):
    title: str
    body: str
    guest_name: str | None = None


class PostReply(Request, frozen=True):
    body: str
    guest_name: str | None = None


class BumpThread(Request, frozen=True):
    guest_name: str | None = None


class EditPost(Request, frozen=True):
    body: str


class MoveThread(Request, frozen=True):
    forum: str


class Register(Request, frozen=True):
    name: str
    password: str


class ChangeRole(Request, frozen=True):
    role: str


class SignIn(Request, frozen=True):
    name: str
    password: str


class Suspend(Request, frozen=True):
    reason: str
    until: datetime | None = None  # None: until a moderator lifts it


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
