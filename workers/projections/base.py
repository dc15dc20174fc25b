"""What a projection is: a name, a version, and how each event changes its read model.

``apply`` only queues Redis commands on the pipeline it is given; the runner sends them in
one MULTI/EXEC together with the new checkpoint. It never reads the read model (invariant
4): an event carries all it needs, so a rebuild writes the same bytes as live projection.
Bump ``version`` when the view's shape changes: workers then rebuild it in the background.
"""

from __future__ import annotations

from typing import Any, Protocol

from events import RecordedEvent
from workers.readmodels import Namespace

Pipe = Any  # redis.asyncio.client.Pipeline; commands are queued, not awaited


class Projection(Protocol):
    name: str
    version: int

    def apply(self, record: RecordedEvent, ns: Namespace, pipe: Pipe) -> None: ...
