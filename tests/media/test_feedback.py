"""Feedback loops with real aiortc peers: PLI, NACK, receiver and sender reports, REMB, mute."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiortc.codecs import vpx

from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until
from tests.media.taps import receiver_of, tap

pytestmark = pytest.mark.media
A, B = "stttt-hai-phong", "stttt-quang-tri"


@pytest.fixture
async def meeting(server: RunningServer) -> AsyncIterator[list[SimulatedParticipant]]:
    hall = server.participant(Role.HALL)
    a = server.participant(Role.SITE, A, width=320, height=180, fps=15)
    b = server.participant(Role.SITE, B, width=320, height=180, fps=15)
    try:
        for p in (hall, a, b):
            await p.connect()
            await p.join_media()
        assert await wait_until(lambda: a.stats.video_frames > 5 and b.stats.video_frames > 5, 10)
        yield [hall, a, b]
    finally:
        for p in (hall, a, b):
            await p.close()


def slot_ssrc(server: RunningServer, participant: str, slot: str) -> int:
    (found,) = [s for s in server.bridge.hub.router.slots_of(participant) if s.name == slot]
    return found.layout.ssrc


async def test_a_receivers_pli_brings_a_keyframe_from_the_program_source(
    server: RunningServer, meeting: list[SimulatedParticipant]
) -> None:
    _, a, _ = meeting
    watch = tap(a, "program-video")
    await asyncio.sleep(1.0)  # past the keyframe-request throttle of the join
    before = watch.keyframes
    await receiver_of(a, "program-video")._send_rtcp_pli(slot_ssrc(server, A, "program-video"))
    assert await wait_until(lambda: watch.keyframes > before, 1.0), "no keyframe after the PLI"


async def test_a_nack_is_served_from_history_as_rtx(
    server: RunningServer, meeting: list[SimulatedParticipant]
) -> None:
    _, a, _ = meeting
    watch = tap(a, "program-video")
    assert await wait_until(lambda: len(watch.sequences) > 20, 5)
    (slot,) = [s for s in server.bridge.hub.router.slots_of(A) if s.name == "program-video"]
    assert slot.layout.rtx_payload_type is not None
    lost = watch.sequences[-10:-7]
    await receiver_of(a, "program-video")._send_rtcp_nack(slot.layout.ssrc, lost)
    assert await wait_until(lambda: slot.retransmitted >= 3, 2.0)
    assert await wait_until(lambda: watch.payload_types.count(slot.layout.rtx_payload_type) >= 3, 2.0)


async def test_publishers_get_receiver_reports_and_sites_get_sender_reports(
    server: RunningServer, meeting: list[SimulatedParticipant]
) -> None:
    _, a, _ = meeting

    async def stats_of(obj: object, kind: str) -> list[object]:
        report = await obj.getStats()  # type: ignore[attr-defined]
        return [s for s in report.values() if s.type == kind]

    sender = next(t.sender for t in a.pc.getTransceivers() if t.kind == "video")  # type: ignore[union-attr]
    receiver = receiver_of(a, "program-video")
    (slot,) = [s for s in server.bridge.hub.router.slots_of(A) if s.name == "program-video"]
    loop = asyncio.get_running_loop()
    end = loop.time() + 8  # reports go every second; aiortc answers every 0.5-1.5 s
    while loop.time() < end:
        remote_inbound = await stats_of(sender, "remote-inbound-rtp")
        remote_outbound = await stats_of(receiver, "remote-outbound-rtp")
        if remote_inbound and remote_outbound and slot.rtt_ms is not None:
            break
        await asyncio.sleep(0.2)
    assert remote_inbound, "the bridge sends receiver reports to a publisher"
    assert remote_outbound and remote_outbound[0].packetsSent > 0, "sites get sender reports"
    assert slot.rtt_ms is not None and slot.rtt_ms < 100, "round trip from the site's reports"


async def test_remb_holds_a_thumbnail_site_to_its_bitrate(
    server: RunningServer, meeting: list[SimulatedParticipant]
) -> None:
    _, a, _ = meeting
    sender = next(t.sender for t in a.pc.getTransceivers() if t.kind == "video")  # type: ignore[union-attr]
    # aiortc's VP8 encoder never goes below its floor (250 kbps); it starts at 500 kbps
    expected = max(server.settings.media.thumbnail_max_kbps * 1000, vpx.MIN_BITRATE)
    assert await wait_until(
        lambda: getattr(sender._RTCRtpSender__encoder, "target_bitrate", None) == expected, 4.0), (
        "REMB reached the encoder")
    assert a.quality and a.quality[-1]["level"] == "thumbnail"
    assert a.video is not None and (a.video.width, a.video.height) == (320, 180)


async def test_lip_sync_sender_reports_are_in_each_sites_timestamp_space(
    server: RunningServer, meeting: list[SimulatedParticipant]
) -> None:
    _, a, _ = meeting
    video, audio = tap(a, "program-video"), tap(a, "program-audio")
    assert await wait_until(lambda: video.sender_report is not None and audio.sender_report is not None, 4)

    def capture_time(t: object, clock: int) -> float:
        ntp, rtp_ts = t.sender_report  # type: ignore[attr-defined]
        packet_ts, _ = t.last  # type: ignore[attr-defined]
        delta = ((packet_ts - rtp_ts + 2**31) % 2**32 - 2**31) / clock
        return ntp / 2**32 + delta

    await asyncio.sleep(0.3)
    skew = capture_time(video, 90000) - capture_time(audio, 48000)
    arrival_gap = video.last[1] - audio.last[1]  # type: ignore[index]
    assert abs(skew - arrival_gap) < 0.15, f"audio/video out of sync by {skew - arrival_gap:.3f} s"


async def test_a_muted_sites_audio_reaches_nobody(
    server: RunningServer, meeting: list[SimulatedParticipant]
) -> None:
    hall, _, b = meeting
    moderator = server.participant(Role.MODERATOR, publish=False)
    await moderator.connect()
    try:
        assert (await moderator.call("program:set", {"site": A}))["ok"]
        heard = [tap(p, "program-audio") for p in (hall, b)]
        router = server.bridge.hub.router
        await asyncio.sleep(1.0)
        assert all(t.packets == 0 for t in heard), "remote sites start muted"
        assert (await moderator.call("mute:set", {"site": A, "muted": False}))["ok"]
        assert await wait_until(lambda: all(t.packets > 10 for t in heard), 3), "A is heard"
        assert (await moderator.call("mute:set", {"site": A, "muted": True}))["ok"]
        await asyncio.sleep(0.2)
        counts, muted_before = [t.packets for t in heard], router.stats.muted
        await asyncio.sleep(1.5)
        assert [t.packets for t in heard] == counts, "muted audio still reached a site"
        assert router.stats.muted > muted_before + 50, "its browser kept sending: the bridge dropped it"
        assert (await moderator.call("mute:set", {"site": A, "muted": False}))["ok"]
        assert await wait_until(lambda: all(t.packets > c + 10 for t, c in zip(heard, counts,
                                                                                strict=True)), 3)
    finally:
        await moderator.close()
