"""The text and scores read models store for times: what the API shows and sorts by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from workers.readmodels import rfc3339, score

moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                       timezones=st.just(UTC))


def test_rfc3339_is_utc_to_the_millisecond():
    assert rfc3339(datetime(2011, 3, 4, 5, 6, 7, 123999, tzinfo=UTC)) == \
        "2011-03-04T05:06:07.123Z"
    assert rfc3339(datetime(2011, 3, 4, 5, 6, 7, tzinfo=UTC)) == "2011-03-04T05:06:07.000Z"
    paris = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2011, 3, 4, 6, 6, 7, 500, tzinfo=paris)) == \
        "2011-03-04T05:06:07.000Z"
    assert rfc3339(datetime(2011, 3, 4, 5, 6, 7)) == "2011-03-04T05:06:07.000Z"


@given(moments)
def test_rfc3339_agrees_with_isoformat(moment: datetime):
    assert rfc3339(moment) == moment.isoformat(timespec="milliseconds")[:-6] + "Z"


@given(moments)
def test_score_is_milliseconds_to_the_microsecond(moment: datetime):
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert score(moment) == float(Fraction(micros, 1000))
    assert score(moment.astimezone(timezone(timedelta(hours=-7)))) == score(moment)
