"""Who is acting: a guest with a temporary name, a member, a moderator or the operator."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["guest", "member", "moderator", "operator"]


class Actor(msgspec.Struct, frozen=True):
    name: str
    role: Role
    # A guest's identity: a one-way digest of the guest token it holds (never the token),
    # so OP marks and a starter's rights follow the person, not a typed name. None for
    # members, the operator, and guests of events written before identities existed.
    guest_id: str | None = None

    @property
    def guest(self) -> bool:
        return self.role == "guest"

    @property
    def moderates(self) -> bool:
        return self.role in ("moderator", "operator")

    @property
    def key(self) -> str:
        """One stable string per person, for limits and ownership: ``member:<folded
        name>``, ``guest:<guest_id>`` (``guest-name:<folded name>`` without an identity)
        or ``operator``."""
        if self.role == "operator":
            return "operator"
        if self.guest:
            return f"guest:{self.guest_id}" if self.guest_id else (
                f"guest-name:{self.name.casefold()}")
        return f"member:{self.name.casefold()}"

    def same_person(self, name: str, guest: bool, guest_id: str | None = None) -> bool:
        """Whether this actor wrote as ``name`` (a guest if ``guest``, with ``guest_id``).

        Members are told apart by name (case-insensitively), and a guest is never a member
        of the same name. A guest is the same guest only by identity: when either side has
        one, the identities must match, so typing another guest's name proves nothing.
        Only when neither has one (imports, logs from before identities) do names decide."""
        if self.guest != guest:
            return False
        if self.guest and (self.guest_id is not None or guest_id is not None):
            return self.guest_id == guest_id
        return self.name.casefold() == name.casefold()


OPERATOR = Actor("operator", "operator")
