"""Who is asking: the operator's token, a member's session token, or nobody (a guest).

Member tokens name server-side sessions (service/sessions.py): the role and suspension a
request is judged by are the member's current ones, never what held at sign-in.

Password hashing (argon2) costs tens of milliseconds of CPU: it runs in worker threads
(argon2-cffi releases the GIL), a few at a time, so sign-ins never stall the event loop
and a burst of them cannot take every thread of the process.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from events.records import member_stream
from service.domain import members
from service.domain.actors import OPERATOR, Actor
from service.domain.errors import NotAuthenticatedError
from service.sessions import Session, SessionRefusedError, Sessions

T = TypeVar("T")
HASHING_CONCURRENCY = 2  # argon2 runs at once per process (the box has 2 cores)

# Cheap enough for a 2-core box under load; still memory-hard.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        # A missing member still costs one verification: no timing oracle for names.
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class Offloader:
    """Runs CPU-heavy calls in threads, at most ``limit`` at a time; the rest queue."""

    def __init__(self, limit: int = HASHING_CONCURRENCY) -> None:
        self._slots = asyncio.Semaphore(limit)

    async def run(self, call: Callable[..., T], *args: object) -> T:
        async with self._slots:
            return await asyncio.to_thread(call, *args)


class Identity:
    """The signed-in actor, with what the session layer knows of them."""

    __slots__ = ("actor", "session")

    def __init__(self, actor: Actor, session: Session | None = None) -> None:
        self.actor = actor
        self.session = session

    def suspended_detail(self) -> str | None:
        """Why this actor may not write now, or None if they may."""
        if self.session is None:
            return None
        found = members.suspension(self.session.standing, self.session.now)
        return None if found is None else members.suspended_detail(found)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when none was sent."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticatedError("send credentials as 'Authorization: Bearer <token>'")
    return token


class Authenticator:
    def __init__(self, sessions: Sessions, operator_token: str | None) -> None:
        self.sessions = sessions
        self._operator_token = operator_token

    async def open_session(self, name: str) -> str:
        return await self.sessions.open(member_stream(name))

    async def identify(self, authorization: str | None) -> Identity | None:
        """Who the credentials name, None when none were sent; refuses bad ones (401)."""
        token = bearer_token(authorization)
        if token is None:
            return None
        if self._operator_token and hmac.compare_digest(
            token.encode(), self._operator_token.encode()
        ):
            return Identity(OPERATOR)
        try:
            session = await self.sessions.resolve(token)
        except SessionRefusedError as refused:
            raise NotAuthenticatedError(refused.reason) from None
        standing = session.standing
        role = standing.role if standing.role in members.ROLES else "member"
        return Identity(Actor(standing.name, role), session)  # type: ignore[arg-type]
