"""The settle-time collector: one full pass after joins and leaves settle, nothing leaks."""

from __future__ import annotations

import gc
import weakref

from signaling.collector import SettledCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_one_pass_once_the_membership_settles_and_frozen_garbage_is_still_freed() -> None:
    try:
        c = SettledCollector(settle_s=3.0)
        assert c.observe(1, 0.0) is None, "a join just happened"
        assert c.observe(1, 2.0) is None, "not settled yet"
        node = Node()
        ref = weakref.ref(node)
        assert c.observe(1, 3.5) is not None and gc.get_freeze_count() > 0
        assert c.observe(1, 10.0) is None, "one pass per settling, not one per second"
        del node  # a site that left: its objects were frozen with the rest
        assert ref() is not None, "frozen: no automatic pass reclaims it"
        assert c.observe(2, 11.0) is None
        assert c.observe(2, 14.5) is not None
        assert ref() is None, "the next settle pass reclaimed it"
        assert len(c.pauses) == 2
    finally:
        gc.unfreeze()
