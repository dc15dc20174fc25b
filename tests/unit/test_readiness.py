"""service/readiness.py: reads need Redis and read models within the lag limit, writes
need PostgreSQL, the broker is only reported, and events held behind the log's read
horizon count as lag."""

from __future__ import annotations

import msgspec

from events.postgres import LogLag
from service.readiness import Found, decide, projection_lags

POSITIONS: dict[str, int | None] = {"thread_page": 90, "thread_list": 100}


def found(**changes: object) -> Found:
    base = Found(postgres="ok", redis="ok", broker="ok", positions=POSITIONS,
                 lag=LogLag(head=100, held_seconds=0.0, behind_seconds=[0.4, 0.0]),
                 max_lag=30.0)
    return msgspec.structs.replace(base, **changes)


def test_all_well_is_ready_for_both_with_no_reasons():
    report = decide(found())
    assert (report.status, report.reads, report.writes) == ("ready", "ready", "ready")
    assert report.reasons == []
    assert report.lag_seconds == 0.4 and report.horizon_held_seconds == 0
    assert report.head == 100 and report.projections == POSITIONS


def test_postgresql_down_keeps_reads_ready_and_takes_writes_out():
    report = decide(found(postgres="down: ConnectionRefusedError", lag=None))
    assert (report.reads, report.writes) == ("ready", "not ready")
    assert report.lag_seconds is msgspec.UNSET  # unknown, not 0
    assert any("PostgreSQL does not answer" in r for r in report.reasons)


def test_redis_down_takes_reads_out_and_keeps_writes():
    report = decide(found(redis="down: ConnectionError", positions=None))
    assert (report.reads, report.writes) == ("not ready", "ready")
    assert any("Redis does not answer" in r for r in report.reasons)


def test_a_read_model_not_built_yet_takes_reads_out():
    report = decide(found(positions={"thread_page": None, "thread_list": 100},
                          lag=LogLag(head=100, held_seconds=0.0, behind_seconds=[0.0])))
    assert report.reads == "not ready" and report.rebuilding == ["thread_page"]


def test_events_held_behind_the_horizon_are_lag_even_when_every_read_model_caught_up():
    held = LogLag(head=100, held_seconds=31.5, behind_seconds=[0.0, 0.0])
    report = decide(found(positions={"thread_page": 100, "thread_list": 100}, lag=held))
    assert report.reads == "not ready" and report.writes == "ready"
    assert report.lag_seconds == 31.5 and report.horizon_held_seconds == 31.5
    assert any("read horizon is held" in r for r in report.reasons)
    assert any("31.5 s behind" in r for r in report.reasons)
    # Below the limit: said, still ready.
    report = decide(found(lag=msgspec.structs.replace(held, held_seconds=5.0)))
    assert report.reads == "ready"
    assert any("read horizon is held" in r for r in report.reasons)


def test_projection_lag_is_the_older_of_its_own_backlog_and_the_held_horizon():
    lag = LogLag(head=100, held_seconds=3.0, behind_seconds=[7.0, 0.0])
    assert projection_lags({"a": 90, "b": 100}, lag) == {"a": 7.0, "b": 3.0}


def test_the_broker_is_reported_never_required():
    report = decide(found(broker="down: no answer within 1 s"))
    assert (report.reads, report.writes) == ("ready", "ready")
    assert any("broker does not answer" in r for r in report.reasons)
    assert decide(found(broker="not used")).reasons == []


def test_a_lag_that_could_not_be_measured_is_said_not_guessed():
    report = decide(found(lag=None))
    assert report.reads == "ready" and report.lag_seconds is msgspec.UNSET
    assert any("could not be measured" in r for r in report.reasons)
