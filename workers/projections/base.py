"""What a projection is: a name, a version, and for each event type it reads, a handler
saying how that event changes its read model.

Handlers are methods named after the event's stored tag: ``on_post_added`` handles
``PostAdded``. They only queue changes on the batch they are given (workers/batch.py); the
catch-up pass commits them in one transaction with the new checkpoint. They never read
the read model (invariant 4): an event carries all it needs, so a rebuild writes the same
bytes as live projection. Bump ``version`` when the view's shape changes: workers then
rebuild it in the background.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from events import EVENT_TYPES
from workers.batch import Batch
from workers.readmodels import Namespace

Handler = Callable[[Any, Namespace, Batch], None]


class Projection:
    name: ClassVar[str]
    version: ClassVar[int]
    # CPU per event relative to the others (measured on the replay benchmark's log):
    # how ``forum replay --jobs`` shares projections out between processes.
    cost: ClassVar[float] = 1.0
    # Whether ``partition_of`` tells where each event's changes go: a projector that
    # holds some partitions (workers/partitions.py) then skips the events of the others
    # instead of making changes it would drop.
    partitioned: ClassVar[bool] = False

    def __init__(self) -> None:
        # workers/apply.py looks handlers up by the event's type, once per type and batch.
        self.handlers: dict[type, Handler] = {
            cls: getattr(self, f"on_{tag}")
            for tag, cls in EVENT_TYPES.items() if hasattr(self, f"on_{tag}")
        }

    def partition_of(self, event: Any) -> int:
        """The one partition every change ``event`` makes lies in (``partitioned``
        projections only)."""
        raise NotImplementedError
