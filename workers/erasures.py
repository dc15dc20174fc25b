"""How read models follow an erasure (events/erasure.py rewrites the log in place).

What a namespace holds was built from the log as it read then: after an erasure rewrote
events below its checkpoint, it still shows the erased name. So each namespace records
the log's head when it was started (``born``, in its name), and a ``MemberErased`` event
at a position above that makes it stale: live ones are rebuilt beside themselves and
swapped in (blue/green, as for a new projection version), builds under way start again.
A namespace started after the erasure committed read only rewritten events, so live
projection and a replay agree, and the old keys are dropped at the swap.

Rebuilding everything is the simple correct answer while thread pages cannot be rebuilt
one at a time; docs/design.md weighs it (erasures are rare; a rebuild runs at replay
speed, beside the live read models).
"""

from __future__ import annotations

from collections.abc import Mapping

from events.members import MemberErased
from workers.apply import Feed


def erased_in(feed: Feed) -> int:
    """The position of the last erasure in a page of the log, 0 if none."""
    last = 0
    for position, event in feed:
        if event.__class__ is MemberErased:
            last = position
    return last


def born_of(ns: str) -> int:
    """The log's head when the namespace was started (``v{version}.{generation}.{born}``);
    0 when not recorded (namespaces of older code): any erasure makes those stale."""
    parts = ns.split(".")
    try:
        return int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        return 0


def stale_after(namespaces: Mapping[str, str], erased: int) -> list[str]:
    """The projections whose namespace was started before the erasure at ``erased``."""
    return [name for name, ns in namespaces.items() if born_of(ns) < erased]
