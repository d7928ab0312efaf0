"""Voice mode with real peers: who talks becomes the program; a click does not."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import small_meeting, wait_until

pytestmark = pytest.mark.media
A, B = "stttt-tay-ninh", "stttt-soc-trang"


async def test_the_speaking_site_becomes_the_program_and_a_click_does_not(server: RunningServer) -> None:
    async with small_meeting(server, A, B) as (hall, a, b, moderator):
        for p in (hall, a, b):
            assert p.audio is not None
            p.audio.pattern = "silence"
        hall.audio.pattern = "speech"  # type: ignore[union-attr]
        for site in (A, B):
            assert (await moderator.call("mute:set", {"site": site, "muted": False}))["ok"]
        reply = await moderator.call("program:mode", {"mode": "voice"})
        assert reply["ok"]
        conference = server.bridge.conference
        assert await wait_until(lambda: conference.dominant == "hall", 3)
        assert any(s.get("mode") == "voice" for s in b.states), "everyone is told the mode"

        hall.audio.pattern = "silence"  # type: ignore[union-attr]
        a.audio.pattern = "speech"  # type: ignore[union-attr]
        started = time.monotonic()
        assert await wait_until(lambda: conference.program == A, 1.5), "A spoke: A is the program"
        assert await wait_until(lambda: b.stats.last_code == a.code and hall.stats.last_code == a.code,
                                1.5 - (time.monotonic() - started) + 0.5), "every other site sees A"

        b.audio.click()  # a 200 ms click at B while A keeps talking
        await asyncio.sleep(1.5)
        assert conference.program == A and conference.dominant == A
        a.audio.pattern = "silence"  # type: ignore[union-attr]
        b.audio.click()  # a click in the silence: still not a speaker
        await asyncio.sleep(2.0)
        assert conference.program == A, "silence keeps the last speaker"
        talk = conference.control.attendance.talk_s(A, time.time())
        assert talk > 1.0


async def test_mode_changes_are_for_the_console_only(server: RunningServer) -> None:
    site = server.participant(Role.SITE, A, publish=False)
    tech = server.participant(Role.TECHNICIAN, publish=False)
    try:
        await site.connect()
        await tech.connect()
        version = server.bridge.conference.version
        refused = await site.call("program:mode", {"mode": "voice"})
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
        bad = await tech.call("program:mode", {"mode": "karaoke"})
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request"
        assert server.bridge.conference.version == version
        assert (await tech.call("program:mode", {"mode": "lecture"}))["ok"]
        assert await wait_until(lambda: any(s.get("mode") == "lecture" for s in site.states), 3)
    finally:
        await site.close()
        await tech.close()
