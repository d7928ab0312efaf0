"""The technician console's media: every site's thumbnail, and a private listen-in."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until
from tests.media.taps import tap

pytestmark = pytest.mark.media
SITES = ["stttt-lao-cai", "stttt-gia-lai", "stttt-long-an"]


async def test_console_gets_every_thumbnail_and_listens_in_privately(server: RunningServer) -> None:
    hall = server.participant(Role.HALL)
    sites = [server.participant(Role.SITE, s, width=320, height=180, fps=15) for s in SITES]
    console = server.participant(Role.TECHNICIAN, publish=False)
    moderator = server.participant(Role.MODERATOR, publish=False)
    try:
        await moderator.connect()
        for p in [hall, *sites, console]:
            await p.connect()
            await p.join_media()
        assert console.pc is not None
        assert len(console.pc.getTransceivers()) == 6 + 66  # 4 audio, program, content, thumbnails
        thumbs = {s: console.slots[f"thumb:{s}"] for s in SITES}
        ok = await wait_until(lambda: all(st.codes[p.code] >= 2 for p, st in
                                          zip(sites, thumbs.values(), strict=True)), 10)
        assert ok, {s: dict(st.codes) for s, st in thumbs.items()}
        for st in thumbs.values():
            assert st.resolution == (320, 180), "thumbnails are thumbnails"
            assert len(st.codes) == 1, "each tile shows one site only"
        assert console.slots["thumb:stttt-ca-mau"].video_frames == 0, "absent site: empty tile"

        listened = tap(console, "listen-audio")
        others = [tap(p, s) for p in (hall, *sites) for s in ("hall-audio", "speaker-audio")]
        await asyncio.sleep(0.5)
        assert listened.packets == 0, "nothing until the technician picks a site"
        assert (await console.call("listen:set", {"site": SITES[1]}))["ok"]
        await asyncio.sleep(1.0)
        assert listened.packets == 0, "a muted microphone is not listened to, even privately"
        assert (await moderator.call("mute:set", {"site": SITES[1], "muted": False}))["ok"]
        reply = await console.call("listen:set", {"site": SITES[1]})
        assert reply == {"ok": True, "site": SITES[1]}
        assert await wait_until(lambda: listened.packets > 20, 3), "the technician hears the site"
        assert all(t.packets == 0 for t in others), "nobody else hears the listen-in"
        assert server.bridge.conference.program == "hall"
        assert (await console.call("listen:set", {"site": None}))["ok"]
        # packets already on their way may still land (a busy machine delays them): wait for a
        # quiet 0.3 s, within 3 s, then nothing more may come
        end, last = time.monotonic() + 3, (listened.packets, time.monotonic())
        while time.monotonic() < end and time.monotonic() - last[1] < 0.3:
            await asyncio.sleep(0.05)
            if listened.packets != last[0]:
                last = (listened.packets, time.monotonic())
        stopped = listened.packets
        await asyncio.sleep(1.0)
        assert listened.packets == stopped, "the listen-in stops"

        refused = await sites[0].call("listen:set", {"site": SITES[1]})
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    finally:
        for p in [hall, *sites, console, moderator]:
            await p.close()
