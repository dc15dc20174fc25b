"""What /ready and /ready/writes answer, decided from what the probes found (pure).

Two questions, because their answers part when PostgreSQL is away:

- **Can this process serve reads?** (``/ready``, what a load balancer routes on.) Pages
  and API reads come from the read models in Redis: Redis must answer, every read model
  must exist, and the read models must be within ``ready_max_lag`` seconds of the log.
  PostgreSQL is reported, not required: with it down, reads keep working, and a load
  balancer that took every API host out for it would turn a write outage into a total one.
- **Can it take writes?** (``/ready/writes``.) Writes append to PostgreSQL: it must
  answer. Redis is not required (rate limits let writes through without it), nor is the
  read models' lag (a write is accepted however far behind the pages are).

The broker is reported, never required: writes succeed without it and the workers'
periodic catch-up keeps projecting (only later).

Lag is the age of the oldest event some read model has not projected: either readable and
not yet projected, or committed but not readable yet because a transaction somewhere on
the PostgreSQL cluster holds the log's read horizon (events/postgres.py). The second kind
grows for as long as that transaction runs, whatever the workers do. The report says the
horizon is held and for how long, never by whom: the route is public, and the holder may
be another database's session (``forum status`` names it, for the operator).
"""

from __future__ import annotations

import msgspec

from events.postgres import LogLag
from service.api.schemas import Readiness
from service.probes import NOT_USED, OK

READY = "ready"
NOT_READY = "not ready"
HELD_NOTICE_SECONDS = 1.0
"""A held horizon is noted from this age: every append holds it for a moment."""


class Found(msgspec.Struct, frozen=True, kw_only=True):
    """What the probes found."""

    postgres: str
    redis: str
    broker: str
    positions: dict[str, int | None] | None
    """Each read model's checkpoint (None: not built yet); None: Redis could not say."""
    lag: LogLag | None
    """None: PostgreSQL could not say."""
    max_lag: float


def checkpoints(positions: dict[str, int | None]) -> dict[str, int]:
    """The read models that exist, and their checkpoints: what to measure lag from."""
    return {name: p for name, p in positions.items() if p is not None}


def projection_lags(present: dict[str, int], lag: LogLag) -> dict[str, float]:
    """Seconds each read model is behind: the oldest event it has not projected, readable
    or held behind the horizon. ``lag`` was measured from ``present``'s checkpoints, in
    their order."""
    return {name: max(behind, lag.held_seconds)
            for name, behind in zip(present, lag.behind_seconds, strict=True)}


def decide(found: Found) -> Readiness:
    """The report; ``status`` answers /ready (reads), ``writes`` /ready/writes."""
    reasons: list[str] = []
    reads = found.redis == OK and found.positions is not None
    if found.redis != OK:
        reasons.append(f"Redis does not answer ({found.redis}): reads cannot be served")
    elif found.positions is None:
        reasons.append("the read models' checkpoints could not be read from Redis")
    writes = found.postgres == OK
    if not writes:
        reasons.append(f"PostgreSQL does not answer ({found.postgres}): writes fail; reads "
                       "are served from the read models, whose lag is unknown meanwhile")
    report = Readiness(postgres=found.postgres, redis=found.redis, broker=found.broker,
                       status=NOT_READY, reads=NOT_READY, writes=READY if writes else NOT_READY,
                       reasons=reasons, max_lag_seconds=found.max_lag)
    if found.positions is not None:
        report.projections = found.positions
        missing = [name for name, p in found.positions.items() if p is None]
        if missing:
            reads = False
            report.rebuilding = missing
            reasons.append(f"read models not built yet: {', '.join(missing)}")
        if found.lag is not None:
            report.head = found.lag.head
            lags = projection_lags(checkpoints(found.positions), found.lag)
            lag = max(lags.values(), default=found.lag.held_seconds)
            report.lag_seconds = round(lag, 3)
            report.horizon_held_seconds = round(found.lag.held_seconds, 3)
            if found.lag.held_seconds >= HELD_NOTICE_SECONDS:
                reasons.append(
                    f"the log's read horizon is held: an event committed "
                    f"{found.lag.held_seconds:.1f} s ago is not readable yet (a long "
                    "transaction on the PostgreSQL cluster; `forum status` names it)")
            if lag > found.max_lag:
                reads = False
                reasons.append(f"read models are {lag:.1f} s behind the log "
                               f"(limit {found.max_lag:g} s)")
        elif writes:
            reasons.append("the lag could not be measured: PostgreSQL did not answer in time")
    if found.broker not in (OK, NOT_USED):
        reasons.append(f"the broker does not answer ({found.broker}): writes succeed; "
                       "the workers' periodic catch-up keeps projecting, later")
    report.reads = report.status = READY if reads else NOT_READY
    return report
