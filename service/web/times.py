"""How times show on the pages: ``8 Jun 2011``, and in full for a tooltip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec")


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def day(value: str | None) -> str:
    """``2011-06-08T12:00:00Z`` → ``8 Jun 2011``."""
    when = _when(value)
    return f"{when.day} {MONTHS[when.month - 1]} {when.year}" if when else ""


def stamp(value: str | None) -> str:
    """The full time, for a tooltip: ``8 Jun 2011 12:00 UTC``."""
    when = _when(value)
    return f"{day(value)} {when:%H:%M} UTC" if when else ""
