"""Who is asking: the operator's token, a member's signed bearer token, or a guest.

Member tokens are ``name.role.issued.signature`` signed with HMAC-SHA256 under a key kept
in PostgreSQL (created by ``forum migrate``), so any number of API processes accept each
other's tokens without shared session storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.domain.actors import OPERATOR, Actor
from service.domain.errors import NotAuthenticatedError

TOKEN_TTL = 30 * 24 * 3600
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    def __init__(self, key: bytes, operator_token: str | None) -> None:
        self._key = key
        self._operator_token = operator_token

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, name: str, role: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        payload = f"{_b64(name.encode())}.{role}.{issued}"
        return f"{payload}.{self._sign(payload)}"

    def actor(self, authorization: str | None) -> Actor | None:
        """The signed-in actor, None when no credentials were sent; refuses bad ones."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticatedError("send credentials as 'Authorization: Bearer <token>'")
        if self._operator_token and hmac.compare_digest(
            token.encode(), self._operator_token.encode()
        ):
            return OPERATOR
        parts = token.split(".")
        if len(parts) == 4:
            payload = ".".join(parts[:3])
            if hmac.compare_digest(parts[3], self._sign(payload)):
                try:
                    name = _unb64(parts[0]).decode()
                    issued = int(parts[2])
                except ValueError:
                    name, issued = "", 0
                role = parts[1]
                if name and role in ("member", "moderator") and time.time() - issued < TOKEN_TTL:
                    return Actor(name, role)  # type: ignore[arg-type]
        raise NotAuthenticatedError("the token is invalid or has expired; sign in again")
