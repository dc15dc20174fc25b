"""What a projection is: a name, a version, the events it reads, and how each one changes
its read model.

``apply`` only queues changes on the batch it is given (workers/batch.py); the runner
sends them in one atomic call together with the new checkpoint. It never reads the read
model (invariant 4): an event carries all it needs, so a rebuild writes the same bytes as
live projection. ``handles`` names the event types ``apply`` acts on; the runner calls it
for no others. Bump ``version`` when the view's shape changes: workers then rebuild it in
the background.
"""

from __future__ import annotations

from typing import Protocol

from events import ForumEvent
from workers.batch import Batch
from workers.readmodels import Namespace


class Projection(Protocol):
    name: str
    version: int
    handles: frozenset[type]

    def apply(self, event: ForumEvent, ns: Namespace, batch: Batch) -> None: ...
