"""Program switching with real aiortc peers: every site sees the new source within 1 s."""

from __future__ import annotations

import time

import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

from bench.sim.simulate import SimulatedParticipant
from bridge.media.policy import layout
from bridge.media.rtp import vp8_is_keyframe_start, vp8_picture_id
from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until

pytestmark = pytest.mark.media
SITES = ["stttt-ha-noi", "stttt-da-nang", "stttt-can-tho"]


def sees_since(p: SimulatedParticipant, code: int, since: float) -> bool:
    return any(t >= since and c == code for t, c in p.stats.code_frames)


class StreamWatch:
    """Reads the program video packets a participant receives, on the wire: across a change of
    source the VP8 picture ids go on by one (a decoder seeing them jump back would take the new
    pictures for old ones), and the new source starts on a keyframe."""

    def __init__(self, p: SimulatedParticipant) -> None:
        assert p.pc is not None and p.welcome is not None
        slots = [line["slot"] for line in p.welcome["media"]["lines"]]
        receiver = p.pc.getTransceivers()[slots.index("program-video")].receiver
        self.jumps = 0  # picture ids that did not follow on by one
        self.keyframes = 0
        self._last: int | None = None
        original = receiver._handle_rtp_packet

        async def watched(packet, arrival_time_ms):  # type: ignore[no-untyped-def]
            self._see(packet.payload)
            await original(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = watched

    def _see(self, payload: bytes) -> None:
        pid = vp8_picture_id(payload)
        if pid is None:
            return
        if self._last is not None and (pid - self._last) % 0x8000 > 1:
            self.jumps += 1
        if vp8_is_keyframe_start(payload):
            self.keyframes += 1
        self._last = pid


async def test_ten_switches_among_three_sites(server: RunningServer) -> None:
    hall = server.participant(Role.HALL)
    sites = [server.participant(Role.SITE, s, width=320, height=180, fps=15) for s in SITES]
    moderator = server.participant(Role.MODERATOR, publish=False)
    everyone = [hall, *sites]
    try:
        for p in everyone:
            await p.connect()
            await p.join_media()
        await moderator.connect()
        watches = [StreamWatch(p) for p in everyone]
        start = time.monotonic()
        assert await wait_until(lambda: all(sees_since(s, hall.code, start) for s in sites), 10)
        delays = []
        for n in range(10):
            target = sites[n % 3]
            site_id = SITES[n % 3]
            switched_at = time.monotonic()
            reply = await moderator.call("program:set", {"site": site_id})
            assert reply["ok"], reply
            watchers = [p for p in everyone if p is not target]
            seen = await wait_until(
                lambda t=target, ws=watchers, at=switched_at: all(sees_since(w, t.code, at) for w in ws),
                1.0)
            assert seen, f"switch {n} to {site_id}: " + ", ".join(
                f"{w.name} last={w.stats.last_code}" for w in watchers)
            delays.append(time.monotonic() - switched_at)
            # the site on the program sees the main hall
            assert await wait_until(
                lambda t=target, at=switched_at: sees_since(t, hall.code, at), 1.0)
        assert server.bridge.conference.program == SITES[9 % 3]
        for p, watch in zip(everyone, watches, strict=True):
            assert p.stats.unreadable == 0, f"{p.name}: damaged pictures after a switch"
            assert watch.keyframes >= 3, f"{p.name}: {watch.keyframes} keyframes in 10 switches"
            assert watch.jumps == 0, f"{p.name}: picture ids jumped {watch.jumps} times"
        router = server.bridge.hub.router
        assert router.stats.keyframe_requests >= 10
        print(f"switch delays: max {max(delays) * 1000:.0f} ms")
    finally:
        for p in [*everyone, moderator]:
            await p.close()


async def test_program_set_needs_a_console_role_and_a_roster_site(server: RunningServer) -> None:
    site = server.participant(Role.SITE, "stttt-thua-thien-hue", publish=False)
    moderator = server.participant(Role.MODERATOR, publish=False)
    try:
        await site.connect()
        await moderator.connect()
        version = server.bridge.conference.version
        refused = await site.call("program:set", {"site": "stttt-thua-thien-hue"})
        assert refused == {"ok": False, "error": {"code": "forbidden",
                                                  "message": "role site may not program:set"}}
        bad = await moderator.call("program:set", {"site": "stttt-atlantis"})
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request"
        assert server.bridge.conference.version == version
        assert server.bridge.conference.program == "hall"
        good = await moderator.call("program:set", {"site": "stttt-thua-thien-hue"})
        assert good == {"ok": True, "version": version + 1}
        assert await wait_until(lambda: any(s.get("program") == "stttt-thua-thien-hue"
                                            for s in site.states), 5), "everyone is told"
    finally:
        await site.close()
        await moderator.close()


async def test_the_answer_offers_opus_vp8_and_rtx_only(server: RunningServer) -> None:
    """A client offering every codec it has (as browsers do: G722, PCMU, H.264, …) gets an
    answer that names only what the bridge forwards: Opus, VP8 and RTX."""
    lines = layout(Role.SITE, [])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        for line in lines:
            pc.addTransceiver(line.kind, direction="sendrecv" if line.send else "recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        offered = rtpmaps(pc.localDescription.sdp)
        assert {"pcmu", "h264"} <= offered, "the test's offer names more than the bridge forwards"
        answer = await server.bridge.hub.offer("stttt-an-giang", lines, pc.localDescription.sdp)
        assert rtpmaps(answer) == {"opus", "vp8", "rtx"}, answer
    finally:
        await pc.close()
        await server.bridge.hub.leave("stttt-an-giang")


def rtpmaps(sdp: str) -> set[str]:
    return {line.split(" ", 1)[1].split("/")[0].lower()
            for line in sdp.splitlines() if line.startswith("a=rtpmap:")}
