"""Applying a page of the log: each event goes to the handlers of the targets that read
its type and have not yet seen it, and their changes go into a batch per target. Pure:
the catch-up pass (workers/catch_up.py) reads the page and commits the changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events import ForumEvent
from workers.batch import Batch
from workers.projections.base import Handler, Projection
from workers.readmodels import Namespace
from workers.readmodels.keys import PARTITIONS, partition_of_key
from workers.resp import Command

Feed = list[tuple[int, ForumEvent]]
EVERY: frozenset[int] = frozenset(range(PARTITIONS))


@dataclass(frozen=True)
class Target:
    """A projection, the namespace its changes go to, and the partitions of it this pass
    writes (workers/readmodels/keys.py): changes to the others' keys are left to whoever
    holds them."""

    projection: Projection
    ns: Namespace
    partitions: frozenset[int] = field(default=EVERY)

    @property
    def checkpoints(self) -> list[str]:
        return [self.ns.checkpoints[p] for p in sorted(self.partitions)]


class Changes:
    """The batches of one pass, one per target, each kept to its target's partitions."""

    __slots__ = ("_batches",)

    def __init__(self, batches: list[tuple[Target, Batch]]) -> None:
        self._batches = batches

    def commands(self) -> list[Command]:
        out: list[Command] = []
        for target, batch in self._batches:
            commands = batch.commands()
            if len(target.partitions) < PARTITIONS:
                kept = target.partitions
                commands = [c for c in commands if partition_of_key(str(c[1])) in kept]
            out += commands
        return out


def apply(feed: Feed, targets: list[Target], positions: list[int]) -> Changes:
    """The changes ``feed`` makes to each target above its checkpoint."""
    batches = [Batch() for _ in targets]
    routes: dict[type, list[tuple[Handler, Namespace, int, Batch, Projection | None,
                                  frozenset[int]]]] = {}
    highest = max(positions, default=0)  # past it, every target takes every event
    for position, event in feed:
        route = routes.get(type(event))
        if route is None:  # which targets read this type of event: asked once per batch
            route = routes[type(event)] = [
                (t.projection.handlers[type(event)], t.ns, checkpoint, batch,
                 # A target with some partitions asks a projection that can tell
                 # where an event's changes go, and skips those it would drop.
                 t.projection if len(t.partitions) < PARTITIONS
                 and t.projection.partitioned else None, t.partitions)
                for t, checkpoint, batch in zip(targets, positions, batches, strict=True)
                if type(event) in t.projection.handlers
            ]
        above = position > highest
        for handle, ns, checkpoint, batch, ask, partitions in route:
            if (above or position > checkpoint) and (
                    ask is None or ask.partition_of(event) in partitions):
                handle(event, ns, batch)
    return Changes(list(zip(targets, batches, strict=True)))
