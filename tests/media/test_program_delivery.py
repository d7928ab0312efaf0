"""Real aiortc peers over 127.0.0.1: the main hall's picture and sound reach every site."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import weakref

import pytest

from bridge.media.sdp import candidate_addresses
from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until

pytestmark = pytest.mark.media
SITES = ["stttt-ha-noi", "stttt-da-nang", "stttt-ca-mau"]


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
            assert hall.video is not None
            assert s.stats.resolution == (hall.video.width, hall.video.height) == (640, 360)
            assert set(s.stats.codes) == {hall_code}, "a site decoded a picture that is not the hall's"
            assert s.stats.audio_frames > 0
        assert hall.stats.video_frames == 0, "nobody is sent their own picture"
    finally:
        for p in [hall, *sites]:
            await p.close()


def media_tasks() -> int:
    """Tasks running aiortc or aioice code (peer connections, ICE, DTLS, RTP/RTCP loops)."""
    def is_media(task: asyncio.Task[object]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return code is not None and ("/aiortc/" in code.co_filename or "/aioice/" in code.co_filename)
    return sum(1 for t in asyncio.all_tasks() if is_media(t))


def only_loopback(sdp: str) -> bool:
    addresses = candidate_addresses(sdp)
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


async def test_only_loopback_candidates_are_offered_and_used(server: RunningServer) -> None:
    hall = server.participant(Role.HALL)
    site = server.participant(Role.SITE, "stttt-lang-son", width=320, height=180, fps=15)
    try:
        for p in (hall, site):
            await p.connect()
            await p.join_media()
        assert await wait_until(lambda: site.stats.video_frames > 0, 15)
        for p in (hall, site):
            assert p.pc is not None
            assert only_loopback(p.pc.localDescription.sdp), "the client offered a non-loopback address"
            assert only_loopback(p.pc.remoteDescription.sdp), "the server answered a non-loopback address"
            for transceiver in p.pc.getTransceivers():
                pair = transceiver.receiver.transport.transport._connection._nominated.get(1)
                assert pair is not None
                assert ipaddress.ip_address(pair.local_candidate.host).is_loopback
                assert ipaddress.ip_address(pair.remote_addr[0]).is_loopback
    finally:
        await hall.close()
        await site.close()


async def test_a_site_that_leaves_frees_its_peer_connection_and_tasks(server: RunningServer) -> None:
    hall = server.participant(Role.HALL)
    await hall.connect()
    await hall.join_media()
    hub, router = server.bridge.hub, server.bridge.hub.router
    await asyncio.sleep(0.5)
    baseline = media_tasks()
    site = server.participant(Role.SITE, "stttt-ben-tre", width=320, height=180, fps=15)
    await site.connect()
    await site.join_media()
    assert await wait_until(lambda: site.stats.video_frames > 5, 15)
    assert hub.link_count() == 2 and len(router.slots_of("stttt-ben-tre")) == 5  # 4 + content
    link = hub.link("stttt-ben-tre")
    assert link is not None and link.state == "connected"
    gone = weakref.ref(link)
    del link
    await site.sio.disconnect()  # the page goes away; its peer connection is left open
    assert await wait_until(lambda: hub.link_count() == 1, 5), "the site's peer connection is freed"
    assert hub.participant_count() == 1, "and its whole record in the hub, not only the link"
    assert router.slots_of("stttt-ben-tre") == []
    assert router.publisher_stats("stttt-ben-tre") == {}
    closed = gone()
    assert closed is None or closed.state == "closed", "the server closed its peer connection"
    del closed
    gc.collect()
    assert gone() is None, "nothing keeps the site's peer connection alive"
    assert await wait_until(lambda: media_tasks() <= baseline, 10), (
        f"aiortc/aioice tasks left behind: {media_tasks()} > {baseline}")
    assert server.bridge.conference.sites["stttt-ben-tre"].presence == "offline"
    assert site.pc is not None
    assert await wait_until(lambda: site.pc.connectionState in ("closed", "failed"), 10), (
        "the server ended the site's media")
    await site.close()
    await hall.close()
