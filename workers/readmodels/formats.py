"""How times are written into the read models, as sorted-set scores and as text: shared
by the projections (which write them) and the reads (which read them back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Final

import msgspec

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_encode_json: Final = msgspec.json.Encoder().encode


def score(moment: datetime) -> float:
    """Sorted-set score of a time: milliseconds since the epoch, to the microsecond (the
    float nearest the exact value: read from its decimal, as Redis reads ``score_text``;
    compiled, ``micros / 1000`` would round twice past 2**53 microseconds)."""
    return float(score_text(moment))


_EPOCH_ORDINAL: Final = _EPOCH.toordinal()


def score_text(moment: datetime) -> str:
    """A time's score as Redis is sent it: the exact decimal ``milliseconds.micro``, which
    Redis (strtod) reads as the float nearest to it. Several times cheaper than timedelta
    arithmetic and ``repr`` of a float, which cost more than the rest of a ZADD."""
    if moment.tzinfo is not UTC:
        moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None
                  else moment.astimezone(UTC))
    seconds = ((moment.toordinal() - _EPOCH_ORDINAL) * 86400 + moment.hour * 3600
               + moment.minute * 60 + moment.second)
    micros = seconds * 1_000_000 + moment.microsecond
    sign = ""
    if micros < 0:
        sign, micros = "-", -micros
    fraction = str(micros % 1000)
    return f"{sign}{micros // 1000}.{'000'[len(fraction):]}{fraction}"


def moment_of(score_text: bytes | str) -> datetime:
    """The time a ``score`` came from, as Redis gives the score back. Exact: a score is
    the float nearest a whole number of microseconds over 1000, and Redis prints it
    round-trip; multiplied back exactly (a float product would round, by up to half a
    microsecond after 2100), the nearest whole number is those microseconds (until 2200,
    past which a float no longer tells microseconds apart at this scale)."""
    return _EPOCH + round(Fraction(float(score_text)) * 1000) * _MICROSECOND


def rfc3339(moment: datetime) -> str:
    """UTC to the millisecond, ``2011-03-04T05:06:07.123Z``."""
    if moment.tzinfo is not UTC:  # stored times are UTC; naive ones never the machine's
        moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None
                  else moment.astimezone(UTC))
    # msgspec writes "2011-03-04T05:06:07.123456Z", or "...07Z" on a whole second, many
    # times faster than isoformat().
    raw = _encode_json(moment).decode()
    return raw[1:24] + "Z" if len(raw) == 29 else raw[1:20] + ".000Z"
