"""The floor with real peers: the granted site is seen and heard everywhere, then muted again."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

import pytest

from tests.conftest import RunningServer
from tests.media.helpers import small_meeting, wait_until
from tests.media.taps import tap

pytestmark = pytest.mark.media
A, B = "stttt-an-giang", "stttt-binh-dinh"


async def test_granted_site_is_heard_and_seen_then_muted_on_release(server: RunningServer) -> None:
    async with small_meeting(server, A, B) as (hall, a, b, moderator):
        heard_by_b, heard_by_hall = tap(b, "program-audio"), tap(hall, "program-audio")
        assert (await a.call("floor:request", {"topic": "Ý kiến"}))["ok"]
        await asyncio.sleep(0.5)
        assert heard_by_hall.packets == 0, "queued, still muted: nobody hears A"
        assert (await moderator.call("floor:grant", {"site": A}))["ok"]
        assert await wait_until(lambda: heard_by_b.packets > 20 and heard_by_hall.packets > 20, 3)
        assert await wait_until(lambda: b.stats.last_code == a.code, 2), "A is on B's program"
        assert server.bridge.hub.router.is_muted(B), "B did not ask: B stays muted"
        assert (await a.call("floor:release", {}))["ok"]
        assert await wait_until(lambda: b.stats.last_code == hall.code, 2), "back to the hall"
        router = server.bridge.hub.router
        assert router.is_muted(A), "the floor ends: A's microphone closes"
        dropped = router.stats.muted
        await asyncio.sleep(1.0)
        assert router.stats.muted > dropped + 40, "A's audio is dropped in the bridge"


def gaps(sequences: list[int]) -> list[tuple[int, int]]:
    """Jumps in a slot's sequence numbers as they arrived (loopback: no reordering, no loss)."""
    return [(a, b) for a, b in pairwise(sequences) if (b - a) % 65536 != 1]


async def test_a_slot_resumed_after_each_revoke_continues_its_numbering(server: RunningServer) -> None:
    """Ten revoke/grant cycles: the hall's picture comes back within half a second each time, and
    no receiver sees a jump in any slot's numbering (a jump is a gap nobody can repair)."""
    async with small_meeting(server, A, B, width=320, height=180, fps=15) as (hall, a, b, moderator):
        picture, sound = tap(hall, "program-video"), tap(hall, "program-audio")
        hall_heard_by_b = tap(b, "hall-audio")
        late: list[float] = []
        for _ in range(10):
            assert (await moderator.call("floor:grant", {"site": A}))["ok"]
            granted = time.monotonic()
            assert await wait_until(lambda g=granted: any(t >= g and c == a.code
                                                          for t, c in hall.stats.code_frames), 3)
            late.append(next(t for t, c in hall.stats.code_frames if t >= granted and c == a.code)
                        - granted)
            await asyncio.sleep(0.4)
            assert (await moderator.call("floor:revoke", {"site": A}))["ok"]
            await asyncio.sleep(0.4)
        assert max(late) < 0.5, f"the granted site's picture reached the hall after {late}"
        for name, seen in (("hall program-video", picture), ("hall program-audio", sound),
                           ("B hall-audio", hall_heard_by_b)):
            main = max(set(seen.payload_types), key=seen.payload_types.count)
            sequences = [s for s, pt in zip(seen.sequences, seen.payload_types, strict=True) if pt == main]
            assert len(sequences) > 50, name
            assert gaps(sequences) == [], f"{name} skipped numbers"
