"""The text and scores read models store for times: what the API shows and sorts by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from workers.batch import Batch
from workers.readmodels import (
    Namespace,
    counter_key,
    moment_of,
    rfc3339,
    score,
    score_text,
)
from workers.readmodels.keys import _REMEMBERED, PARTITIONS, TAGS

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


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]))
       | st.datetimes())
def test_score_is_milliseconds_to_the_microsecond(moment: datetime):
    # Any time a datetime holds: before the epoch, and past 2**53 microseconds (2255),
    # where a float division of the microseconds would round twice.
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    micros = (utc - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert score(moment) == float(Fraction(micros, 1000))
    assert float(score_text(moment)) == score(moment)  # what Redis reads, it is


def test_score_text_examples():
    assert score_text(datetime(1970, 1, 1, tzinfo=UTC)) == "0.000"
    assert score_text(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == "1000.005"
    assert score_text(datetime(1969, 12, 31, 23, 59, 59, 999500)) == "-0.500"
    assert score_text(datetime(2011, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)) == \
        "1299215167123.456"


@given(moments)
def test_the_time_of_a_score_is_the_time_it_came_from(moment: datetime):
    # As Redis prints a score (%.17g) and as repr() does: both round-trip the float.
    assert moment_of(repr(score(moment))) == moment
    assert moment_of(f"{score(moment):.17g}".encode()) == moment


def test_a_batch_writes_times_in_these_formats_once_coalesced():
    first, last = datetime(2011, 3, 4, 5, 6, 7, tzinfo=UTC), datetime(2018, 1, 2, tzinfo=UTC)
    batch = Batch()
    for moment in (first, last):  # a thread bumped twice in one batch
        batch.hset("t:1", "bumped_at", moment)
        batch.zadd("s:f:threads", {"1": moment})
    batch.hset("u:g:x", "joined", first)
    assert sorted(batch.commands()) == sorted([
        ("HSET", "t:1", "bumped_at", rfc3339(last)),
        ("HSET", "u:g:x", "joined", rfc3339(first)),
        ("ZADD", "s:f:threads", score_text(last), "1"),
    ])


def test_remembered_keys_are_the_keys():
    ns = Namespace("p:thread_page:v2.1")
    for thread_id in [*range(_REMEMBERED + 10), 3, 3]:  # past the memory's size, and back
        base = f"p:thread_page:v2.1:{{{TAGS[thread_id % PARTITIONS]}}}:t:{thread_id}"
        assert ns.thread_keys(thread_id) == (base, f"{base}:posts", f"{base}:likes")
    for name in [*(f"user{n}" for n in range(_REMEMBERED + 10)), "Bob", "bob"]:
        for guest in (False, True):
            assert ns.member_of(name, guest) == ns.member(counter_key(name, guest))
