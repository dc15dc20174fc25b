"""The base of every stored event.

Stored events follow msgspec's schema-evolution rules: explicit snake_case tags that never
change, no ``array_like``, and unknown fields are tolerated so that old and new code can
read the same log during a rolling deploy.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


# gc=False: events hold only text, numbers, times and lists of such structs, so they can
# never be part of a reference cycle; untracked, a page of a few thousand decoded events
# no longer makes the cyclic collector run over and over (a tenth of a replay's time).
class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Something that happened. ``occurred_at`` is domain time (kept on import);
    ``actor`` is who did it (a member's or a guest's name, or ``operator``)."""

    occurred_at: datetime
    actor: str
