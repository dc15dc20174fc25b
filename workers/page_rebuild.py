"""A thread page rebuilt from the thread's own events when a read finds it missing or
partial (Redis evicted its keys: docs/design.md, "Thread pages as a cache").

The page is folded by the projection's own handlers (workers/projections/thread_page.py)
from the thread's events up to its partition's checkpoint C, and written by one script
(workers/readmodels/scripts.py REBUILD_PAGE) only if the page is still missing or partial
and the checkpoint is still one the fold holds for: from C up to (not including) the
thread's next event after C, or the first position the stream read could have missed
(past the log's head read before it). The page then reflects exactly what the projector
has applied, and the projector goes on from there: no event applied twice, none skipped,
and a page is written whole or not at all. Else the fold is made again. The range, not
C alone: on a busy board the checkpoint moves every few milliseconds, mostly for other
threads.

The script's keys are the partition's (one hash slot: it runs on a Redis Cluster too);
it checks no pointer. A namespace swapped out, recovered or dropped loses its
checkpoints before anything else (a fence), so a checkpoint missing there sends the
rebuild back to read the pointer again.
"""

from __future__ import annotations

import asyncio
from typing import Final

from redis.asyncio import Redis

from events import EventStore
from events.records import thread_stream
from workers.apply import Target, apply
from workers.projections import PROJECTIONS
from workers.readmodels import Keys
from workers.readmodels.errors import ReadModelUnavailableError
from workers.readmodels.keys import PAGE_TTL, thread_partition
from workers.readmodels.scripts import REBUILD_PAGE
from workers.resp import Command

NAME: Final = "thread_page"
# A projector that commits between our read of the checkpoint and our write makes us
# fold again; on a busy board a few times at most.
_ATTEMPTS: Final = 20
# A namespace fenced and its pointer not moved yet: the swap is between the two.
_FENCED_WAIT: Final = 0.005


def page_commands(commands: list[Command], page: tuple[str, ...]) -> list[Command]:
    """The commands of a fold that write the page (not the summary), less their expires
    (the script sets them)."""
    return [c for c in commands if len(c) > 1 and c[1] in page and c[0] != "EXPIRE"]


async def rebuild_page(redis: Redis, keys: Keys, store: EventStore, thread_id: int) -> bool:
    """Rebuild ``thread_id``'s page if it is still missing or partial; True if written."""
    script = redis.register_script(REBUILD_PAGE)
    projection = PROJECTIONS[NAME]
    for _ in range(_ATTEMPTS):
        pointer = await redis.get(keys.active(NAME))
        if pointer is None:
            raise ReadModelUnavailableError(
                "the read models are being rebuilt; try again shortly", 2)
        active = pointer.decode() if isinstance(pointer, bytes) else pointer
        ns = keys.namespace(NAME, active)
        # The checkpoint of the thread's partition: the one its page's keys move with.
        checkpoint_key = ns.checkpoints[thread_partition(thread_id)]
        at = await redis.get(checkpoint_key)
        if at is None:  # fenced: the pointer is about to move
            await asyncio.sleep(_FENCED_WAIT)
            continue
        checkpoint = int(at)
        # Every event at or below the head is committed, so the stream read after it
        # holds every event of the thread up to there.
        head = await store.head()
        recorded = await store.read_stream(thread_stream(thread_id))
        events = [(r.position, r.event) for r in recorded if r.position <= checkpoint]
        bound = min([r.position for r in recorded if r.position > checkpoint]
                    + [max(head, checkpoint) + 1])
        batch = apply(events, [Target(projection, ns)], [0])
        page = ns.page_keys(thread_id)
        args: list[str | bytes | int] = [checkpoint, bound, PAGE_TTL]
        for command in page_commands(batch.commands(), page):
            args += [len(command), *command]
        answer = await script(keys=[checkpoint_key, ns.thread(thread_id), *page], args=args)
        if answer[0] != 2:
            return bool(answer[0])
        if not answer[1]:  # fenced meanwhile
            await asyncio.sleep(_FENCED_WAIT)
    raise ReadModelUnavailableError("the thread page changed during its rebuild; try again")
