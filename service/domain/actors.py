"""Who is acting: a guest with a temporary name, a member, a moderator or the operator."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["guest", "member", "moderator", "operator"]


class Actor(msgspec.Struct, frozen=True):
    name: str
    role: Role

    @property
    def guest(self) -> bool:
        return self.role == "guest"

    @property
    def moderates(self) -> bool:
        return self.role in ("moderator", "operator")

    def same_person(self, name: str, guest: bool) -> bool:
        """Guests are told apart by name only; a guest is never a member of the same name."""
        return self.guest == guest and self.name.casefold() == name.casefold()


OPERATOR = Actor("operator", "operator")
