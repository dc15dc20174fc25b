"""Partitions of the read models (workers/readmodels/keys.py, workers/apply.py,
workers/catch_up.py, workers/partitions.py): where keys lie, and that a projector holding
some partitions writes exactly what one holding all of them writes there."""

from __future__ import annotations

import random
from datetime import timedelta

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from tests.builders import NOW, Actor, one_of_each, post_added, thread_started
from workers.apply import Target, apply
from workers.catch_up import aligned
from workers.partitions import share
from workers.projections import PROJECTIONS
from workers.readmodels import Namespace, counter_key
from workers.readmodels.keys import (
    BOARD,
    PARTITIONS,
    TAGS,
    named_partition,
    partition_of_key,
    thread_partition,
)


def test_each_partitions_tag_lies_in_its_share_of_the_slots():
    width = REDIS_CLUSTER_HASH_SLOTS // PARTITIONS
    for partition, tag in enumerate(TAGS):
        assert partition * width <= key_slot(f"{{{tag}}}".encode()) < (partition + 1) * width
    assert len(set(TAGS)) == PARTITIONS


def test_the_keys_of_one_stream_share_a_slot_with_their_checkpoint():
    ns = Namespace("f:thread_page:v6.1.0")
    for thread_id in (1, 2, 17, 123_456):
        keys = [*ns.thread_keys(thread_id), ns.revisions(thread_id, 3), ns.likers(thread_id),
                ns.checkpoints[thread_partition(thread_id)]]
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
    for slug in ("history", "off-topic"):
        keys = [*ns.section_keys(slug), ns.archive(slug, 2011), ns.archive_years(slug),
                ns.checkpoints[named_partition(slug)]]
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
    for name, guest in (("Ann", False), ("ann", True)):
        key = counter_key(name, guest)
        keys = [ns.member(key), ns.recent_threads(key), ns.recent_posts(key),
                ns.recent_deleted(key), ns.held_by(key), ns.checkpoints[named_partition(key)]]
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
    board = [ns.sections, ns.unanswered, ns.newest, ns.guest_names, ns.guest_firsts,
             ns.held_pending(), ns.held_items(), ns.checkpoints[BOARD]]
    assert {partition_of_key(k) for k in board} == {BOARD}


def _feed() -> list[tuple[int, object]]:
    rng = random.Random(7)
    events: list[object] = list(one_of_each())
    authors = [Actor(f"u{n}", "guest" if n % 3 == 0 else "member") for n in range(9)]
    for thread_id in range(900, 940):
        events.append(thread_started(thread_id, forum=rng.choice(["a", "b", "c"]),
                                     author=rng.choice(authors)))
        for number in range(1, rng.randrange(2, 6)):
            events.append(post_added(thread_id, number, author=rng.choice(authors),
                                     at=NOW + timedelta(minutes=number)))
    return list(enumerate(events, 1))


def test_a_projector_holding_some_partitions_writes_what_all_would_write_there():
    feed = _feed()
    rng = random.Random(11)
    for name, projection in PROJECTIONS.items():
        ns = Namespace(f"f:{name}:v1.1.0")
        everything = apply(feed, [Target(projection, ns)], [0]).commands()  # type: ignore[arg-type]
        for _ in range(5):
            some = frozenset(rng.sample(range(PARTITIONS), rng.randrange(1, PARTITIONS)))
            part = apply(feed, [Target(projection, ns, some)], [0]).commands()  # type: ignore[arg-type]
            assert part == [c for c in everything if partition_of_key(str(c[1])) in some]
            assert part or not any(partition_of_key(str(c[1])) in some for c in everything)


def test_partitions_at_different_checkpoints_are_passed_apart():
    ns = Namespace("f:thread_list:v1.1.0")
    target = Target(PROJECTIONS["thread_list"], ns, frozenset({1, 2, 3}))
    checkpoints = {ns.checkpoints[1]: b"40", ns.checkpoints[2]: b"40", ns.checkpoints[3]: None}
    split = aligned([target], checkpoints)
    assert sorted(sorted(t.partitions) for t in split) == [[1, 2], [3]]
    checkpoints[ns.checkpoints[3]] = b"40"
    assert aligned([target], checkpoints) == [target]


def test_each_projector_claims_its_share():
    assert share(1) == PARTITIONS
    assert share(3) == -(-PARTITIONS // 3)
    assert share(0) == PARTITIONS
    assert share(PARTITIONS * 2) == 1
