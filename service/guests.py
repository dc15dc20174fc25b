"""Guest identity: a random secret the guest holds, and the digest of it the log keeps.

A guest's first write answers a ``guest_token`` (``secrets.token_urlsafe(32)``); the HTML
forms keep it in the ``forum_guest`` cookie (HttpOnly, SameSite=Lax). Sent back as the
``X-Guest-Token`` header (API) or the cookie (pages), it makes later writes the same
guest's: the OP mark, the starter's once-a-day bump and the guest's name follow it.

The server keeps no list of tokens: any well-formed token is an identity, and what events
record is ``guest_id``, the first 16 bytes of the token's SHA-256 in hex, from which the
token cannot be recovered (so neither the log, the idempotency table nor a backup hands
out a guest's secret). A client that makes up its own token only makes itself a new
guest; it cannot become another guest without that guest's token.

A first write sent with an ``Idempotency-Key`` is issued a token derived from that key and
the request (HMAC with a key of the server's, ``service_keys.guest_tokens``), so that its
replay, which answers the first write's result, answers the same token too: a client that
lost the first answer still gets the identity its post was written with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from litestar.exceptions import ClientException
from litestar.params import Parameter

from service.handlers import RequestMeta

GUEST_COOKIE = "forum_guest"
GUEST_HEADER = "X-Guest-Token"
GUEST_COOKIE_MAX_AGE = 365 * 24 * 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # what token_urlsafe(32) makes


def new_token() -> str:
    return secrets.token_urlsafe(32)


def well_formed(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


def guest_id(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).digest()[:16].hex()


def derived_token(key: bytes, seed: str) -> str:
    """A token as random as ``new_token``'s to anyone without ``key``, the same for a seed."""
    mac = hmac.new(key, b"guest-token\0" + seed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


@dataclass
class GuestPass:
    """The token a request came with, or the one issued to it on its first guest write.
    ``seed`` (the Idempotency-Key and the request's fingerprint) makes the issued token
    the same for a replay of the same request."""

    sent: str | None = None
    issued: str | None = None
    seed: str | None = None

    def token(self, key: bytes) -> str:
        if self.sent is not None:
            return self.sent
        if self.issued is None:
            self.issued = derived_token(key, self.seed) if self.seed else new_token()
        return self.issued

    def identity(self, key: bytes) -> str:
        return guest_id(self.token(key))


async def provide_guest_pass(
    meta: RequestMeta,
    x_guest_token: Annotated[str | None, Parameter(
        header=GUEST_HEADER, required=False,
        description="The guest_token a guest's first write answered: makes this write the "
                    "same guest's (OP mark, starter's bump, guest name).")] = None,
) -> GuestPass:
    """The API's guest identity, from ``X-Guest-Token``; a malformed one is 400."""
    if x_guest_token is None:
        seed = (f"{meta.idempotency_key}\0{meta.fingerprint}"
                if meta.idempotency_key is not None else None)
        return GuestPass(seed=seed)
    if not well_formed(x_guest_token):  # a malformed request header: 400, like any other
        raise ClientException(
            f"{GUEST_HEADER} must be the guest_token a guest write answered "
            "(43 characters of A-Z, a-z, 0-9, '-' and '_')", status_code=400,
        )
    return GuestPass(sent=x_guest_token)


def cookie_pass(value: str | None) -> GuestPass:
    """The pages' guest identity, from the ``forum_guest`` cookie; a malformed cookie is
    ignored (a new identity is issued), as a bad ``forum_token`` cookie means a guest."""
    return GuestPass(sent=value if value is not None and well_formed(value) else None)
