"""The queue of posts held for review (events/held.py): what moderators decide about, and
what each author sees of their own pending posts.

Kept in Redis like every other read model (rebuilt by ``forum replay``, committed with its
checkpoint in the same atomic step): a moderator's page is one round trip, and the log
stays the only truth. Keys under the namespace: ``held:pending`` (sorted set of held ids
by the time they were held), ``held:by:{author key}`` (the same, per author) and
``held:items`` (hash: held id -> the item as ready JSON). A decision takes the id out of
both sorted sets and blanks its item, so a rejected post's text does not stay in Redis.
"""

from __future__ import annotations

from typing import Final

import msgspec

from events.held import HeldPostApproved, HeldPostRejected, PostHeld, ThreadHeld
from workers.batch import Batch
from workers.projections.base import Projection
from workers.readmodels import Namespace, rfc3339
from workers.readmodels.values import HeldItem

_encode: Final = msgspec.json.Encoder().encode


class Held(Projection):
    name = "held"
    version = 2
    cost = 0.1  # only held events and decisions: rare

    def on_post_held(self, event: PostHeld, ns: Namespace, batch: Batch) -> None:
        self._add(ns, batch, event, HeldItem(
            event.held_id, event.thread_id, event.forum, None, event.author, event.guest,
            event.body, rfc3339(event.occurred_at), False,
        ))

    def on_thread_held(self, event: ThreadHeld, ns: Namespace, batch: Batch) -> None:
        self._add(ns, batch, event, HeldItem(
            event.held_id, event.thread_id, event.forum, event.title, event.author,
            event.guest, event.body, rfc3339(event.occurred_at), True,
        ))

    def on_held_post_approved(self, event: HeldPostApproved, ns: Namespace, batch: Batch
                              ) -> None:
        self._decided(ns, batch, event)

    def on_held_post_rejected(self, event: HeldPostRejected, ns: Namespace, batch: Batch
                              ) -> None:
        self._decided(ns, batch, event)

    @staticmethod
    def _add(ns: Namespace, batch: Batch, event: PostHeld | ThreadHeld, item: HeldItem
             ) -> None:
        hid = str(event.held_id)
        batch.zadd_one(ns.held_pending(), hid, event.occurred_at)
        batch.zadd_one(ns.held_by(event.author_key), hid, event.occurred_at)
        batch.hset(ns.held_items(), hid, _encode(item))

    @staticmethod
    def _decided(ns: Namespace, batch: Batch, event: HeldPostApproved | HeldPostRejected
                 ) -> None:
        hid = str(event.held_id)
        batch.zrem(ns.held_pending(), hid)
        batch.zrem(ns.held_by(event.author_key), hid)
        batch.hset(ns.held_items(), hid, "")
