"""Real aiortc peers over 127.0.0.1: the main hall's picture and sound reach every site."""

from __future__ import annotations

import asyncio

import pytest

from bridge.roles import Role
from tests.conftest import RunningServer

pytestmark = pytest.mark.media
SITES = ["stttt-ha-noi", "stttt-da-nang", "stttt-ca-mau"]


async def wait_until(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())


async def test_hall_program_reaches_every_site(server: RunningServer) -> None:
    hall = server.participant(Role.HALL, width=640, height=360, fps=30)
    sites = [server.participant(Role.SITE, s, width=320, height=180, fps=15) for s in SITES]
    try:
        for p in [hall, *sites]:
            await p.connect()
            await p.join_media()
        hall_code = hall.code
        ok = await wait_until(lambda: all(s.stats.codes[hall_code] >= 3 for s in sites), 20)
        for s in sites:
            assert ok, f"{s.name}: frames={s.stats.video_frames} codes={dict(s.stats.codes)}"
            assert s.stats.resolution == (640, 360)
            assert set(s.stats.codes) == {hall_code}, "a site decoded a picture that is not the hall's"
            assert s.stats.audio_frames > 0
        assert hall.stats.video_frames == 0, "the hall is sent no program"
    finally:
        for p in [hall, *sites]:
            await p.close()
