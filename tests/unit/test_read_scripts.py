"""What a read sends to Redis runs on a Redis Cluster: every key a read script touches is
one it was given in KEYS (no key is built in Lua), every script's KEYS are of one hash
slot, and so is every plain fetch's key with the checkpoint sent beside it."""

from __future__ import annotations

import inspect
import re

import pytest
from redis.crc import key_slot

from workers.readmodels import scripts
from workers.readmodels.keys import BOARD, PARTITIONS, Keys, counter_key, partition_of_key

SOURCES = {name: value for name, value in vars(scripts).items()
           if name.isupper() and not name.startswith("_") and isinstance(value, str)}
SCRIPTS = {name: source for name, source in SOURCES.items() if name != "WHOLE"}
CALL = re.compile(r"redis\.call\('(\w+)',\s*([^,)]+)")


def test_there_are_scripts_to_check() -> None:
    assert {"THREAD_PAGE", "POST", "LISTING", "FORUMS", "ARCHIVE_YEARS", "ACTIVITY",
            "HELD", "REVISIONS", "LIKED", "REBUILD_PAGE"} <= set(SCRIPTS)
    assert set(scripts.READS) == {s for n, s in SCRIPTS.items() if n != "REBUILD_PAGE"}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_key_a_script_touches_comes_from_keys(name: str) -> None:
    calls = CALL.findall(SOURCES[name])
    assert calls
    for command, key in calls:
        assert re.fullmatch(r"KEYS\[[^\]]+\]|summary|posts|likes|unpack\(KEYS",
                            key.strip()), (name, command, key)
    # ``summary``, ``posts`` and ``likes`` are the whole helper's parameters, itself
    # called with KEYS[...]
    for arguments in re.findall(r"whole\(([^)]*)\)", SOURCES[name]):
        given = [a.strip() for a in arguments.split(",")]
        assert given == ["summary", "posts", "likes"] or all(
            a.startswith("KEYS[") for a in given), (name, arguments)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_script_says_its_keys_are_of_one_slot(name: str) -> None:
    source = inspect.getsource(scripts)
    comment = re.search(r"((?:^#.*\n)+)" + name + r": Final = ", source, re.M)
    assert comment, f"{name} has no comment above it"
    assert "KEYS (one slot" in comment.group(1), (name, comment.group(1))


def test_a_script_checks_its_checkpoints_before_anything_else() -> None:
    for name, source in SCRIPTS.items():
        if name != "REBUILD_PAGE":
            assert source.startswith(scripts._FENCE), name
    assert "return {2}" in scripts._FENCE


# Real keys: a namespace of each projection, and names that land in every partition.
KEYS = Keys("forum")
NS = {name: KEYS.namespace(name, "v9.1.123") for name in (
    "thread_page", "thread_list", "unanswered", "archives", "member_stats", "held")}
THREADS = range(1, 3 * PARTITIONS)
SLUGS = ["general", "off-topic", "a", "news-2011", *(f"s{i}" for i in range(40))]
NAMES = ["Alice", "bob", "Zoë", "ÉMILE", "guest 7", *(f"user{i}" for i in range(40))]


def one_slot(keys: list[str]) -> bool:
    return len({key_slot(k.encode()) for k in keys}) == 1


def calls() -> list[scripts.Call]:
    tp, lp, up = NS["thread_page"], NS["thread_list"], NS["unanswered"]
    ap, ms, hp = NS["archives"], NS["member_stats"], NS["held"]
    made = [scripts.forums(lp), scripts.board_listing(up, up.unanswered, 0, 24),
            scripts.board_listing(ap, ap.newest, 0, 19), scripts.held(hp, None, 0, 24)]
    for tid in THREADS:
        made += [scripts.thread_page(tp, tid, 0, 24), scripts.post(tp, tid, 3),
                 scripts.revisions(tp, tid, 3, 100), scripts.liked(tp, tid, ["1:alice"])]
    for slug in SLUGS:
        made += [scripts.section_listing(lp, slug, 0, 24),
                 scripts.archive_listing(ap, slug, 2011, 0, 24),
                 scripts.archive_years(ap, lp, slug)]
    for name in NAMES:
        for guest in (False, True):
            made += [scripts.activity(ms, counter_key(name, guest), 10),
                     scripts.held(hp, counter_key(name, guest), 0, 24)]
    return made


def fetches() -> list[scripts.Fetch]:
    tp, lp, ms, hp = NS["thread_page"], NS["thread_list"], NS["member_stats"], NS["held"]
    made = [scripts.held_item(hp, "17")]
    made += [scripts.thread_summary(tp, tid) for tid in THREADS]
    made += [scripts.section_summary(lp, slug) for slug in SLUGS]
    for name in NAMES:
        folded = name.casefold()
        made += [scripts.guest_name(ms, folded), scripts.guest_first(ms, folded)]
        for guest in (False, True):
            made += [scripts.counters(ms, counter_key(name, guest)),
                     scripts.profile(ms, counter_key(name, guest))]
    return made


def fetch_calls() -> list[scripts.Call]:
    """The fetches as a read sends them: one FETCH call per partition."""
    partitions: dict[int, list[scripts.Fetch]] = {}
    for fetch in fetches():
        partitions.setdefault(partition_of_key(fetch.checkpoint), []).append(fetch)
    return [scripts.fetch(group) for group in partitions.values()]


def test_every_call_a_read_makes_has_its_keys_in_one_slot() -> None:
    made = calls() + fetch_calls()
    assert {call.script for call in made} == set(scripts.READS)
    for call in made:
        assert call.checkpoints, call
        assert one_slot(call.all_keys()), call
        assert call.argv()[0] == len(call.checkpoints)
        # Its checkpoints are real ones, of the projections whose keys it reads.
        for checkpoint in call.checkpoints:
            assert any(checkpoint in ns.checkpoints for ns in NS.values()), checkpoint


def test_calls_and_fetches_spread_over_the_partitions() -> None:
    slots = {key_slot(call.checkpoints[0].encode()) for call in calls()}
    assert len(slots) == PARTITIONS
    assert {key_slot(f.checkpoint.encode()) for f in fetches()} == slots


def test_every_fetch_reads_a_key_of_its_checkpoints_slot() -> None:
    for fetch in fetches():
        assert fetch.how[0] in "cafz" and (len(fetch.how) > 1) == (fetch.how[0] in "fz")
        assert one_slot([fetch.checkpoint, fetch.key]), fetch


def test_the_board_keys_share_the_board_partition() -> None:
    board = NS["thread_list"].checkpoints[BOARD]
    for key in (NS["thread_list"].sections, NS["unanswered"].unanswered,
                NS["archives"].newest, NS["member_stats"].guest_names,
                NS["member_stats"].guest_firsts, NS["held"].held_pending(),
                NS["held"].held_items()):
        assert one_slot([board, key]), key


def test_a_fetch_call_reads_each_key_as_told() -> None:
    ms = NS["member_stats"]
    call = scripts.fetch([scripts.counters(ms, "m:ann"), scripts.profile(ms, "m:ann")])
    assert call.script == scripts.FETCH and len(call.checkpoints) == 1
    assert call.keys == (ms.member("m:ann"), ms.member("m:ann"))
    assert call.args == ("c", "a")
    for kind, command in (("c", "HMGET"), ("a", "HGETALL"), ("f", "HGET"), ("z", "ZSCORE")):
        assert re.search(f"kind == '{kind}' then\\n *out.*redis.call\\('{command}'",
                         scripts.FETCH), kind
