"""Applying a page of the log: each event goes to the handlers of the targets that read
its type and have not yet seen it, and all their changes go into one batch. Pure: the
catch-up pass (workers/catch_up.py) reads the page and commits the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import ForumEvent
from workers.batch import Batch
from workers.projections.base import Handler, Projection
from workers.readmodels import Namespace

Feed = list[tuple[int, ForumEvent]]


@dataclass(frozen=True)
class Target:
    """A projection and the namespace its changes go to."""

    projection: Projection
    ns: Namespace


def apply(feed: Feed, targets: list[Target], positions: list[int]) -> Batch:
    """The changes ``feed`` makes to each target above its checkpoint, as one batch."""
    batch = Batch()
    routes: dict[type, list[tuple[Handler, Namespace, int]]] = {}
    highest = max(positions, default=0)  # past it, every target takes every event
    for position, event in feed:
        route = routes.get(type(event))
        if route is None:  # which targets read this type of event: asked once per batch
            route = routes[type(event)] = [
                (t.projection.handlers[type(event)], t.ns, checkpoint)
                for t, checkpoint in zip(targets, positions, strict=True)
                if type(event) in t.projection.handlers
            ]
        if position > highest:
            for handle, ns, _ in route:
                handle(event, ns, batch)
        else:
            for handle, ns, checkpoint in route:
                if position > checkpoint:
                    handle(event, ns, batch)
    return batch
