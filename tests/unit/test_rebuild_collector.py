"""A build keeps the cyclic collector out of its batches' way, and puts it back after."""

from __future__ import annotations

import gc

import pytest

from workers import rebuild


def test_a_build_raises_the_collector_threshold_and_restores_it() -> None:
    before = gc.get_threshold()
    with rebuild.collect_per_batch():
        assert gc.get_threshold()[0] >= rebuild._BUILD_GC_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_failed_build_restores_the_collector_too() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), rebuild.collect_per_batch():
        raise RuntimeError("redis went away")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_during_a_build_are_still_collected_after_it() -> None:
    class Node:
        other: object = None

    with rebuild.collect_per_batch():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
    assert gc.collect() >= 2
