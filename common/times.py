"""How times show on the pages: ``8 Jun 2011``, and in full for a tooltip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec")


def when(value: str | None) -> datetime | None:
    """An RFC 3339 time as the read models hold it, in UTC; None if it is none."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def day_of(moment: datetime) -> str:
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def stamp_of(moment: datetime) -> str:
    return f"{day_of(moment)} {moment:%H:%M} UTC"


def day(value: str | None) -> str:
    """``2011-06-08T12:00:00Z`` → ``8 Jun 2011``."""
    moment = when(value)
    return day_of(moment) if moment else ""


def stamp(value: str | None) -> str:
    """The full time, for a tooltip: ``8 Jun 2011 12:00 UTC``."""
    moment = when(value)
    return stamp_of(moment) if moment else ""
