"""One structured log line per request that writes or fails, carrying its correlation id.

The id comes from ``X-Correlation-Id`` (or ``X-Request-Id``) when the client sends one,
else it is made here; the edge (service/edge.py) binds it to the log context for
everything a write logs, echoes it in the response, and the handlers store it in the
metadata of the events the request appends.
"""

from __future__ import annotations

import itertools
import os

import structlog

log = structlog.get_logger("forum.request")
_PROCESS = os.urandom(6).hex() + "-"
_SEQUENCE = itertools.count(1)
MAX_GIVEN = 128  # a longer id sent by a client is replaced, not stored in every event


def correlation_id(given: bytes | None, request_id: bytes | None) -> str:
    """The client's ``X-Correlation-Id`` (else its ``X-Request-Id``) when it is printable
    and at most ``MAX_GIVEN`` long, else a new id unique to this process."""
    for sent in (given, request_id):
        if sent:
            text = sent.decode("latin-1")
            if len(text) <= MAX_GIVEN and text.isprintable():
                return text
            break  # the first one sent decides, as a proxy that set it meant
    # a random prefix per process and a counter: cheap, since this runs on every read
    return f"{_PROCESS}{next(_SEQUENCE):x}"


def log_request(method: str, path: str, status: int, seconds: float, cid: str) -> None:
    """Writes are logged (an audit trail keyed by correlation id); reads only when they
    fail, as a warning."""
    emit = log.warning if status >= 500 else log.info
    emit("request", method=method, path=path, status=status, ms=round(seconds * 1000, 2),
         correlation_id=cid)
