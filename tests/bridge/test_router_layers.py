"""Two program layers in the router, with fake endpoints and a fake clock: each site's picture
follows its own layer, and a layer change is seamless (same SSRC, continuous numbers, on a
keyframe of the target layer, VP8 picture ids going on by one)."""

from __future__ import annotations

import asyncio
import struct
from itertools import pairwise

from bridge.media import rtcp
from bridge.media.layers import LayerRules
from bridge.media.policy import PROGRAM_AUDIO, PROGRAM_VIDEO, Scene
from bridge.media.router import MediaRouter
from bridge.media.rtp import URI_ABS_SEND_TIME, parse_header, vp8_ids, vp8_is_keyframe_start
from tests.bridge.test_router import Layout

SSRCS = {"audio": 6, "video": 5, "video-low": 7}  # what the publisher sends on, per stream


class Endpoint:
    def __init__(self, pid: str) -> None:
        self.participant_id = pid
        self.sent: list[bytes] = []
        self.rtcp: list[bytes] = []

    def inbound_extension_ids(self, kind: str) -> dict[str, int]:
        return {URI_ABS_SEND_TIME: 3} if kind == "video" else {}

    def send_rtp(self, packet: bytes) -> bool:
        self.sent.append(packet)
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        self.rtcp.append(packet)
        return True

    def remote_ssrc(self, stream: str) -> int | None:
        return SSRCS.get(stream)

    def plis(self) -> list[int]:
        return [r.media_ssrc for p in self.rtcp for r in rtcp.parse(p) if isinstance(r, rtcp.Pli)]

    def video(self, ssrc: int) -> list[bytes]:
        return [p for p in self.sent if struct.unpack_from("!I", p, 8)[0] == ssrc]


def vp8(stream: str, seq: int, pid: int, key: bool) -> bytes:
    """A VP8 packet of the publisher's stream: 15-bit picture id, one packet per picture."""
    base = {"video": 40_000, "video-low": 9_000}[stream]  # each encoder numbers on its own
    header = struct.pack("!BBHII", 0x80, 0x80 | 96, (base + seq) & 0xFFFF,
                         (base * 7 + seq * 3000) & 0xFFFFFFFF, SSRCS[stream])
    picture = (base + pid) & 0x7FFF
    descriptor = bytes([0x90, 0x80, 0x80 | picture >> 8, picture & 0xFF])
    return header + descriptor + (b"\x50\x00\x00\x9d\x01\x2a" if key else b"\x01\x00\x00")


class Meeting:
    """Publisher "a" on the program sending both layers; sites "b" and "c" receiving it."""

    def __init__(self) -> None:
        self.now = 0.0
        # sites whose estimators have settled (the warm-up has its own test)
        self.router = MediaRouter(Scene("hall", "a"), clock=lambda: self.now,
                                  layer_rules=LayerRules(warmup_s=0.0), estimate_layers=True)
        self.a, self.b, self.c = Endpoint("a"), Endpoint("b"), Endpoint("c")
        self.router.add_publisher(self.a)
        for n, site in enumerate((self.b, self.c)):
            self.router.add_receiver(site, [
                (PROGRAM_VIDEO, Layout(ssrc=100 + n, extension_ids={URI_ABS_SEND_TIME: 5},
                                       rtx_payload_type=97, rtx_ssrc=150 + n)),
                (PROGRAM_AUDIO, Layout(kind="audio", ssrc=200 + n, payload_type=111,
                                       clock_rate=48000))])
        self.frame = 0

    def frames(self, count: int, key_every: int = 10_000, low_key_at: set[int] | None = None
               ) -> None:
        """`count` pictures of both layers, 1/30 s apart (keyframes where asked)."""
        for _ in range(count):
            n = self.frame
            self.router._forward_packet("a", "video", vp8("video", n, n, n % key_every == 0))
            low_key = n == 0 or (low_key_at is not None and n in low_key_at)
            self.router._forward_packet("a", "video-low", vp8("video-low", n, n, low_key))
            self.frame += 1
            self.now += 1 / 30

    def remb(self, site: Endpoint, bps: int, ssrc: int) -> None:
        self.router.on_rtcp(site.participant_id, rtcp.remb(9, bps, [ssrc]))


def picture_ids(packets: list[bytes]) -> list[int]:
    out = []
    for p in packets:
        header = parse_header(p)
        assert header is not None
        ids = vp8_ids(p[header.payload_offset :])
        assert ids is not None and ids.picture_id is not None
        out.append(ids.picture_id)
    return out


async def test_a_site_whose_estimate_falls_gets_the_low_layer_seamlessly() -> None:
    m = Meeting()
    m.frames(30)
    assert len(m.b.video(100)) == 30 and len(m.c.video(101)) == 30
    for _ in range(3):  # a poor line: REMB 500 kbps, once a second
        m.remb(m.b, 500_000, 100)
        m.frames(30)
    assert m.router.layers.layer("b") == "low"
    assert SSRCS["video-low"] in m.a.plis(), "the low layer was asked for a keyframe"
    before = len(m.b.video(100))
    m.frames(20, low_key_at={m.frame + 5})
    b_packets = m.b.video(100)
    switched = b_packets[before + 6]  # after the high layer's picture of the same moment
    header = parse_header(switched)
    assert header is not None and vp8_is_keyframe_start(switched[header.payload_offset :]), \
        "the switch lands on the low layer's keyframe"
    assert before + 21 == len(b_packets), "the high layer flowed until the low keyframe"
    seqs = [struct.unpack_from("!H", p, 2)[0] for p in b_packets]
    assert all((y - x) % 65536 == 1 for x, y in pairwise(seqs)), "one stream, no gap"
    stamps = [struct.unpack_from("!I", p, 4)[0] for p in b_packets]
    steps = [(y - x) % (1 << 32) for x, y in pairwise(stamps)]
    assert all(0 < s < 9000 for s in steps), f"timestamps go on with time: {sorted(set(steps))}"
    pids = picture_ids(b_packets)
    assert all((y - x) % 0x8000 == 1 for x, y in pairwise(pids)), "picture ids go on by one"
    c_ids = picture_ids(m.c.video(101))
    assert all((y - x) % 0x8000 == 1 for x, y in pairwise(c_ids)) and len(c_ids) == 140, \
        "the other site stays on the high layer, untouched"
    assert m.router.layer_of("b")["receiving"] == "low"
    assert m.router.layer_of("c")["receiving"] == "high"


async def test_loss_over_ten_percent_sends_a_site_low_and_audio_keeps_flowing() -> None:
    m = Meeting()
    m.frames(5)
    # loss is judged over a window (>= 1 s and 40 packets) from the reports' cumulative counts
    m.router.on_rtcp("b", rtcp.receiver_report(9, (rtcp.ReportBlock(100, 0, 0, 1000, 0, 0, 0),)))
    m.now += 0.2  # a NACK's report block: 1 of 6 lost (its own fraction 17 %) is not a poor line
    m.router.on_rtcp("b", rtcp.receiver_report(9, (rtcp.ReportBlock(100, 43, 1, 1006, 0, 0, 0),)))
    assert m.router.layers.layer("b") == "high"
    m.now += 1.0
    block = rtcp.ReportBlock(100, 40, 16, 1100, 0, 0, 0)  # 16 of 100 lost over 1.2 s
    m.router.on_rtcp("b", rtcp.receiver_report(9, (block,)))
    assert m.router.layers.layer("b") == "low"
    assert m.router.layers.layer("c") == "high"
    for seq in range(10):
        m.router._forward_packet("a", "audio", struct.pack("!BBHII", 0x80, 111, seq, seq * 960,
                                                           SSRCS["audio"]) + b"\xfc\x00")
    assert len([p for p in m.b.sent if p[8:12] == (200).to_bytes(4, "big")]) == 10


async def test_a_line_that_starts_losing_is_seen_within_the_window_not_after_the_next() -> None:
    """The loss window slides back over the recent reports: a window that completed just before
    the loss began does not make the site wait a whole further window."""
    m = Meeting()
    m.frames(5)
    m.now = 10.0  # quarters add up exactly from here
    seq, lost = 1000, 0
    for _ in range(9):  # a clean line, a report each 0.25 s, 40 packets a second
        m.router.on_rtcp("b", rtcp.receiver_report(9, (rtcp.ReportBlock(100, 0, lost, seq, 0, 0, 0),)))
        m.now += 0.25
        seq += 10
    assert m.router.layers.layer("b") == "high"
    started = m.now
    while m.router.layers.layer("b") == "high" and m.now - started < 3.0:
        lost += 3  # 30 % of what is sent from now on is lost
        m.router.on_rtcp("b", rtcp.receiver_report(9, (rtcp.ReportBlock(100, 128, lost, seq, 0, 0, 0),)))
        m.now += 0.25
        seq += 10
    assert m.router.layers.layer("b") == "low"
    assert m.now - started <= 0.5, "seen once half of the last second was lossy"


async def test_nacks_for_what_was_sent_before_a_layer_switch_are_not_resent() -> None:
    """After the switch keyframe the site's decoder needs nothing older: resending the high
    layer's lost packets down a line too thin for it (or asking for keyframes because they are
    gone) would only crowd out the low layer."""
    m = Meeting()
    m.frames(30)
    m.router.pin_low("b", True)
    m.frames(10, low_key_at={m.frame + 5})
    assert m.router.layer_of("b")["receiving"] == "low"
    seqs = [struct.unpack_from("!H", p, 2)[0] for p in m.b.video(100)]
    switch_at = 30 + 5  # the low keyframe's packet
    before, after = seqs[switch_at - 2], seqs[switch_at + 2]
    plis = len(m.a.plis())
    m.router.on_rtcp("b", rtcp.nack(9, 100, [before]))
    assert m.b.video(150) == [], "nothing older than the switch is resent"
    assert len(m.a.plis()) == plis, "nor is a keyframe asked for it"
    m.router.on_rtcp("b", rtcp.nack(9, 100, [after]))
    (resent,) = m.b.video(150)
    header = parse_header(resent)
    assert header is not None
    assert struct.unpack_from("!H", resent, header.payload_offset)[0] == after, \
        "the low layer's own loss is repaired"


async def test_a_pinned_site_stays_low_and_the_low_layer_needs_a_live_source() -> None:
    m = Meeting()
    m.frames(3)
    m.router.pin_low("c", True)
    assert m.router.layer_of("c")["pinned"] is True
    m.frames(3, low_key_at={4})
    assert m.router.layer_of("c")["receiving"] == "low"
    for _ in range(20):
        m.remb(m.c, 10_000_000, 101)  # a great estimate does not move a pinned site
        m.now += 1.0
        m.router.tick()
    assert m.router.layer_of("c")["receiving"] == "low"
    # a source that stops sending its low layer: the pinned site falls back to its high layer
    # (a picture beats none), on a keyframe of it
    for n in range(90):
        m.router._forward_packet("a", "video", vp8("video", 500 + n, 500 + n, n % 30 == 0))
        m.now += 1 / 30
    m.router.tick()
    m.router._forward_packet("a", "video", vp8("video", 600, 600, True))
    assert m.router.layer_of("c")["receiving"] == "high"


def test_rtx_and_the_bridge_send_time_on_every_copy() -> None:
    """abs-send-time is the bridge's own time of sending, on forwarded packets and on resent
    ones: a site's estimate measures the bridge's path, not the publisher's."""
    m = Meeting()
    m.frames(3)
    first = parse_header(m.b.video(100)[0])
    assert first is not None and 5 in first.extensions
    m.now += 0.25
    seq = struct.unpack_from("!H", m.b.video(100)[1], 2)[0]
    m.router.on_rtcp("b", rtcp.nack(9, 100, [seq]))
    resent = m.b.video(150)
    assert len(resent) == 1
    header = parse_header(resent[0])
    assert header is not None
    stamp = int.from_bytes(header.extensions[5], "big")
    assert stamp == int(m.now * (1 << 18)) & 0xFFFFFF
    assert header.extensions[5] != first.extensions[5]


async def test_a_low_layer_site_is_probed_until_its_estimate_recovers() -> None:
    m = Meeting()
    m.router._loop = asyncio.get_running_loop()
    m.frames(30)
    for _ in range(3):
        m.remb(m.b, 500_000, 100)
        m.frames(30, low_key_at={m.frame + 1})
        m.router.tick()
    assert m.router.layers.layer("b") == "low"
    assert "b" in m.router._probing, "a low-layer site's traffic is padded"
    await asyncio.sleep(0.2)
    assert m.router.stats.probe_packets > 0
    assert len(m.b.video(150)) == m.router.stats.probe_packets, "copies go on b's RTX stream"
    assert m.c.video(151) == [], "a site on the high layer is not probed"
    m.router.pin_low("b", True)
    m.router.tick()
    assert "b" not in m.router._probing, "a pinned site is not probed"
    m.router.close()


def opus(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, SSRCS["audio"]) + b"\xfc\xff\xfe"


def publisher_audio_block(m: Meeting) -> rtcp.ReportBlock:
    """The block on the publisher's sound in the newest receiver report the bridge sent it."""
    reports = [r for p in m.a.rtcp for r in rtcp.parse(p) if isinstance(r, rtcp.ReceiverReport)]
    return next(b for b in reports[-1].blocks if b.ssrc == SSRCS["audio"])


async def test_a_lossy_line_downstream_reaches_the_publishers_opus_encoder() -> None:
    """The publisher's sound arrives whole; b loses 12 % of it after the bridge. The bridge's
    report on that sound says 12 % (so the publisher's Opus puts in-band FEC in), while its
    cumulative count stays what the bridge itself lost, and its video is reported clean."""
    m = Meeting()
    for seq in range(50):
        m.router._forward_packet("a", "audio", opus(seq))
    assert len([p for p in m.b.sent if struct.unpack_from("!I", p, 8)[0] == 200]) == 50
    m.frames(5)
    m.router.tick()
    assert publisher_audio_block(m).fraction_lost == 0, "nothing lost anywhere yet"

    m.router.on_rtcp("b", rtcp.receiver_report(9, (rtcp.ReportBlock(200, 31, 6, 49, 0, 0, 0),)))
    for seq in range(50, 100):
        m.router._forward_packet("a", "audio", opus(seq))
    m.router.tick()
    block = publisher_audio_block(m)
    assert block.fraction_lost == 31 and block.packets_lost == 0
    reports = [r for p in m.a.rtcp for r in rtcp.parse(p) if isinstance(r, rtcp.ReceiverReport)]
    assert {b.fraction_lost for b in reports[-1].blocks if b.ssrc != SSRCS["audio"]} == {0}

    # c on a dreadful line: what is passed on stops at a quarter
    m.router.on_rtcp("c", rtcp.receiver_report(9, (rtcp.ReportBlock(201, 200, 40, 99, 0, 0, 0),)))
    m.router.tick()
    assert publisher_audio_block(m).fraction_lost == 64
    # both lines heal: the publisher hears so on the next report
    for site, ssrc in (("b", 200), ("c", 201)):
        m.router.on_rtcp(site, rtcp.receiver_report(9, (rtcp.ReportBlock(ssrc, 0, 40, 150, 0, 0, 0),)))
    m.router.tick()
    assert publisher_audio_block(m).fraction_lost == 0
