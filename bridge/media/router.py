"""The media router: applies the pure forwarding decisions to real endpoints.

Incoming packets wait in a bounded backlog and are fanned out in arrival order, in turns of at
most a few milliseconds, so a keyframe burst to every site never stalls the event loop. The
backlog keeps two queues: what every site needs (audio, the program's picture) and thumbnails (the
other sources' pictures, for the consoles); when it is full a thumbnail gives way first. Per packet: parse
once, count it for the publisher's receiver reports, drop muted audio, then for the slots that
want this source only: admit (keyframe-gated), render the site's numbers on a template shared
per extension layout, keep it for NACKs, send. Nothing here awaits. `tick()` sends the periodic
RTCP (receiver reports and REMB to publishers, translated sender reports to every site).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bridge.media import rtcp
from bridge.media.forwarder import History, OutStream, Route, Throttle
from bridge.media.policy import Scene, quality_for, source_for
from bridge.media.rtp import (
    FORWARDED_URIS,
    URI_AUDIO_LEVEL,
    Template,
    audio_level,
    build_template,
    parse_header,
    render,
    render_rtx,
    vp8_is_keyframe_start,
)
from bridge.media.stats import StreamStats

HISTORY_PACKETS = 512  # per video slot: ~3 s of a 1.5 Mbps program
# A packet older than this is not worth resending: the receiver has moved on (a site back from a
# network loss asks for everything it missed); a keyframe from the source repairs it instead.
RETRANSMIT_MAX_AGE_S = 1.0
Kept = tuple[int, int, bytes, bytes]  # a template's first byte, marker, extensions, payload
Sent = tuple[Kept, int, float]  # and the timestamp and send time of one copy
BACKLOG_PACKETS = 8192  # incoming packets waiting for their fan-out (~1.5 s of 66 sites and the hall)
DRAIN_BUDGET_S = 0.002  # fan-out work per loop turn before other callbacks get their turn
AudioLevelListener = Callable[[str, int, bool, float], None]  # source, -dBov, voice, now


class SlotLayout(Protocol):
    """What the negotiation fixed for one stream the bridge sends (PeerLink's SlotInfo)."""

    @property
    def kind(self) -> str: ...

    @property
    def ssrc(self) -> int: ...

    @property
    def payload_type(self) -> int: ...

    @property
    def clock_rate(self) -> int: ...

    @property
    def extension_ids(self) -> dict[str, int]: ...

    @property
    def rtx_payload_type(self) -> int | None: ...

    @property
    def rtx_ssrc(self) -> int | None: ...


class Endpoint(Protocol):
    """A participant's media connection as the router needs it (PeerLink implements it)."""

    @property
    def participant_id(self) -> str: ...

    def inbound_extension_ids(self, kind: str) -> dict[str, int]: ...

    def send_rtp(self, packet: bytes) -> bool: ...

    def send_rtcp(self, packet: bytes) -> bool: ...

    def remote_ssrc(self, kind: str) -> int | None: ...


@dataclass(slots=True)
class Slot:
    """One stream the bridge sends to one participant."""

    participant: str
    name: str
    endpoint: Endpoint
    layout: SlotLayout
    route: Route
    stream: OutStream
    layout_key: int  # slots with the same extension ids share one rendered template per packet
    extension_ids: dict[str, int]
    # atoms and tuples of atoms only, so the collector stops tracking each entry after its first
    # pass and never walks 66 x 512 of them again
    history: History[Sent] | None
    rtx_sequence: int = 0
    sent: int = 0
    dropped: int = 0
    retransmitted: int = 0
    remote_loss: float = 0.0  # fraction the site reports lost (RTCP RR)
    remote_jitter: int = 0
    rtt_ms: float | None = None
    last_sr: dict[int, float] = field(default_factory=dict)  # middle NTP bits -> sent at


@dataclass(slots=True)
class Publisher:
    endpoint: Endpoint
    rtcp_ssrc: int
    stats: dict[str, StreamStats] = field(default_factory=dict)  # kind -> stats
    # kind -> the last sender report (NTP time, RTP timestamp) and when it arrived (monotonic s)
    reports: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    keyframes: Throttle = field(default_factory=lambda: Throttle(0.5))
    remb_bps: int = 0
    level_ext: int | None = None


@dataclass(slots=True)
class RouterStats:
    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    muted: int = 0
    keyframe_requests: int = 0
    unrepairable_nacks: int = 0  # NACKs asking for packets gone or too old: a keyframe instead
    retransmitted: int = 0
    backlog_dropped: int = 0  # audio or program packets dropped from a full backlog
    backlog_thumbnails_dropped: int = 0  # thumbnail packets that gave way in a full backlog


class MediaRouter:
    def __init__(self, scene: Scene, keyframe_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 bitrates_bps: dict[str, int] | None = None,
                 on_audio_level: AudioLevelListener | None = None) -> None:
        self._clock = clock
        self._interval = keyframe_interval_s
        self._scene = scene
        self._bitrates = bitrates_bps or {"high": 1_500_000, "thumbnail": 150_000}
        self._publishers: dict[str, Publisher] = {}
        self._slots: dict[tuple[str, str], Slot] = {}
        self._layouts: dict[tuple[int | None, ...], int] = {}  # extension ids -> a small key
        self._by_ssrc: dict[int, Slot] = {}
        self._by_source: dict[tuple[str, str], dict[tuple[str, str], Slot]] = {}
        self._muted: set[str] = set()
        # (arrival number, publisher, kind, packet): every site's needs, and thumbnails
        self._backlog: deque[tuple[int, str, str, bytes]] = deque()
        self._thumbnails: deque[tuple[int, str, str, bytes]] = deque()
        self._arrivals = 0
        self._drain_handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_audio_level = on_audio_level  # told every audio packet's RFC 6464 level
        self.stats = RouterStats()

    @property
    def scene(self) -> Scene:
        return self._scene

    # -- membership ----------------------------------------------------------------------

    def add_publisher(self, endpoint: Endpoint) -> None:
        pid = endpoint.participant_id
        pub = Publisher(endpoint, random.getrandbits(32) or 1, keyframes=Throttle(self._interval))
        pub.level_ext = endpoint.inbound_extension_ids("audio").get(URI_AUDIO_LEVEL)
        pub.remb_bps = self._bitrates[quality_for(self._scene, pid)]
        self._publishers[pid] = pub
        if any(s.route.pending == pid for s in self._slots.values()):
            self._request_keyframe(pid, force=True)

    def add_receiver(self, endpoint: Endpoint, slots: list[tuple[str, SlotLayout]]) -> None:
        pid = endpoint.participant_id
        for name, layout in slots:
            ids = {u: layout.extension_ids[u] for u in FORWARDED_URIS if u in layout.extension_ids}
            slot = Slot(
                pid, name, endpoint, layout, Route(layout.kind == "video"),
                OutStream(layout.ssrc, layout.payload_type, layout.clock_rate,
                          random.getrandbits(16), random.getrandbits(32)),
                self._layouts.setdefault(tuple(ids.get(u) for u in FORWARDED_URIS), len(self._layouts)),
                ids,
                History(HISTORY_PACKETS) if layout.kind == "video" else None,
                random.getrandbits(16))
            self._slots[(pid, name)] = slot
            self._by_ssrc[layout.ssrc] = slot
            self._route(slot, source_for(self._scene, pid, name))

    def remove(self, participant_id: str) -> None:
        self._publishers.pop(participant_id, None)
        for key in [k for k in self._slots if k[0] == participant_id]:
            slot = self._slots.pop(key)
            self._by_ssrc.pop(slot.layout.ssrc, None)
            self._unindex(slot, slot.route.current)
            self._unindex(slot, slot.route.pending)
        for slots in self._by_source.values():
            for slot in list(slots.values()):  # unindexing edits this very dict
                if participant_id in (slot.route.current, slot.route.pending):
                    self._unindex(slot, participant_id)
                    slot.route.source_gone(participant_id)
                    if slot.route.current is None:
                        slot.stream.pause()

    def slots_of(self, participant_id: str) -> list[Slot]:
        return [s for k, s in self._slots.items() if k[0] == participant_id]

    def health(self, participant_id: str, now: float) -> dict[str, float | None]:
        """Network figures of one participant now: loss (over the last report interval) and
        jitter of what it sends us, loss it reports of what we send it, round trip, seconds since
        its last packet."""
        pub = self._publishers.get(participant_id)
        streams = list(pub.stats.values()) if pub else []
        slots = self.slots_of(participant_id)
        rtts = [s.rtt_ms for s in slots if s.rtt_ms is not None]
        return {
            "loss_in": max((s.recent_loss for s in streams), default=0.0),
            "jitter_ms": max((s.jitter_ms() for s in streams), default=0.0),
            "loss_out": max((s.remote_loss for s in slots), default=0.0),
            "rtt_ms": min(rtts) if rtts else None,
            "silent_s": min((now - s.last_arrival for s in streams), default=None),
        }

    def publisher_stats(self, participant_id: str) -> dict[str, StreamStats]:
        pub = self._publishers.get(participant_id)
        return dict(pub.stats) if pub else {}

    # -- control -------------------------------------------------------------------------

    def set_scene(self, scene: Scene) -> None:
        """Re-route every slot for a new scene (program switch, listen-in, heard sources)."""
        self._scene = scene
        wanted: set[str] = set()
        for slot in self._slots.values():
            source = self._route(slot, source_for(scene, slot.participant, slot.name), ask=False)
            if source is not None:
                wanted.add(source)
        for source in wanted:  # one keyframe request per new source, however many slots wait
            self._request_keyframe(source, force=True)
        for pid, pub in self._publishers.items():
            pub.remb_bps = self._bitrates[quality_for(scene, pid)]

    def set_muted(self, source: str, muted: bool) -> None:
        """A muted source's audio is dropped here, whatever its browser sends."""
        if muted:
            if source not in self._muted:
                for slot in self._by_source.get((source, "audio"), {}).values():
                    if slot.route.current == source:
                        slot.stream.pause()  # its numbers resume without a gap on unmute
            self._muted.add(source)
        else:
            self._muted.discard(source)

    def is_muted(self, source: str) -> bool:
        return source in self._muted

    def _route(self, slot: Slot, source: str | None, ask: bool = True) -> str | None:
        """Point a slot at a source; the source to ask for a keyframe when the route changed."""
        before = (slot.route.current, slot.route.pending)
        needs_keyframe = slot.route.want(source)
        after = (slot.route.current, slot.route.pending)
        if before == after:
            return None  # nothing moved: no new keyframe request (they are throttled per source)
        if slot.route.current != before[0]:
            # a new source (or none): whatever is forwarded next continues from the last number
            # sent, even the old source again after one that sent nothing (a muted site)
            slot.stream.pause()
        for old in set(before) - set(after):
            self._unindex(slot, old)
        for new in set(after) - set(before):
            if new is not None:
                self._by_source.setdefault((new, slot.layout.kind), {})[(slot.participant, slot.name)] = slot
        if not needs_keyframe or source is None:
            return None
        if ask:
            self._request_keyframe(source, force=True)
        return source

    def _unindex(self, slot: Slot, source: str | None) -> None:
        index = self._by_source.get((source, slot.layout.kind)) if source is not None else None
        if index is not None:
            index.pop((slot.participant, slot.name), None)

    # -- the packet path -----------------------------------------------------------------

    def on_rtp(self, participant_id: str, kind: str, data: bytes) -> None:
        """Take a packet from the socket callback; the fan-out runs in budgeted turns (`_drain`).
        Full: the oldest thumbnail gives way (its moment has passed, and only consoles miss it);
        audio or the program only when no thumbnail is waiting."""
        self._arrivals += 1
        entry = (self._arrivals, participant_id, kind, data)
        thumbnails = self._thumbnails
        if kind == "video" and participant_id != self._scene.program:
            thumbnails.append(entry)
        else:
            self._backlog.append(entry)
        if len(self._backlog) + len(thumbnails) > BACKLOG_PACKETS:
            if thumbnails:
                thumbnails.popleft()
                self.stats.backlog_thumbnails_dropped += 1
            else:
                self._backlog.popleft()
                self.stats.backlog_dropped += 1
        if self._drain_handle is None:
            loop = self._loop or self._bind_loop()
            self._drain_handle = loop.call_soon(self._drain)

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()  # once: each lookup is a getpid() system call
        return self._loop

    def _drain(self) -> None:
        """Forward queued packets, oldest first across both queues, for at most one budget, then
        let the loop run other work: a keyframe burst to 66 sites must not hold signaling (or
        anything) for 100 ms."""
        self._drain_handle = None
        urgent, thumbnails = self._backlog, self._thumbnails
        deadline = time.perf_counter() + DRAIN_BUDGET_S
        while urgent or thumbnails:
            if thumbnails and (not urgent or thumbnails[0][0] < urgent[0][0]):
                _, participant_id, kind, data = thumbnails.popleft()
            else:
                _, participant_id, kind, data = urgent.popleft()
            self._forward_packet(participant_id, kind, data)
            if time.perf_counter() > deadline:
                break
        if urgent or thumbnails:
            self._drain_handle = (self._loop or self._bind_loop()).call_soon(self._drain)

    def close(self) -> None:
        if self._drain_handle is not None:
            self._drain_handle.cancel()
            self._drain_handle = None
        self._backlog.clear()
        self._thumbnails.clear()

    def _forward_packet(self, participant_id: str, kind: str, data: bytes) -> None:
        pub = self._publishers.get(participant_id)
        header = parse_header(data)
        if pub is None or header is None:
            return
        now = self._clock()
        self.stats.received += 1
        stats = pub.stats.get(kind)
        if stats is None or stats.ssrc != header.ssrc:
            stats = pub.stats[kind] = StreamStats(header.ssrc, 48000 if kind == "audio" else 90000)
        stats.add(header.sequence, header.timestamp, len(data), now)
        if kind == "audio":
            level = audio_level(header, pub.level_ext) if self._on_audio_level is not None else None
            if level is not None and self._on_audio_level is not None:
                voice, dbov = level
                self._on_audio_level(participant_id, dbov, voice, now)
            if participant_id in self._muted:
                self.stats.muted += 1
                return
        slots = self._by_source.get((participant_id, kind))
        if not slots:
            return
        keyframe = kind == "video" and vp8_is_keyframe_start(memoryview(data)[header.payload_offset :])
        source_ids: dict[str, int] | None = None
        templates: dict[int, tuple[Template, Kept]] = {}
        waiting = False
        forwarded = 0
        sequence, timestamp = header.sequence, header.timestamp
        for slot in slots.values():  # switching unindexes from other sources only
            route = slot.route
            if route.current != participant_id:  # pending: switches only on a keyframe
                previous = route.current
                if not route.admit(participant_id, keyframe):
                    waiting = waiting or route.pending == participant_id
                    continue
                if previous is not None:
                    self._unindex(slot, previous)  # the switch completed on this keyframe
            built = templates.get(slot.layout_key)
            if built is None:
                if source_ids is None:
                    source_ids = pub.endpoint.inbound_extension_ids(kind)
                t = build_template(data, header, source_ids, slot.extension_ids)
                built = templates[slot.layout_key] = (t, (t.first, t.marker, t.extensions, t.payload))
            template, kept = built
            stream = slot.stream
            seq, ts = stream.rewrite(participant_id, header.ssrc, sequence, timestamp, now)
            packet = render(template, stream.payload_type, seq, ts, stream.ssrc)
            history = slot.history
            if history is not None:
                history.put(seq, (kept, ts, now))
            if slot.endpoint.send_rtp(packet):
                slot.sent += 1
                stream.octets += len(packet)
                forwarded += 1
            else:
                slot.dropped += 1
                self.stats.dropped += 1
        self.stats.forwarded += forwarded
        if waiting and pub.keyframes.allow(now):
            self._send_pli(pub)

    # -- feedback ------------------------------------------------------------------------

    def on_rtcp(self, participant_id: str, data: bytes) -> None:
        now = self._clock()
        for record in rtcp.parse(data):
            if isinstance(record, rtcp.Pli):
                self._on_pli(participant_id, record.media_ssrc)
            elif isinstance(record, rtcp.Nack):
                self._on_nack(participant_id, record)
            elif isinstance(record, rtcp.SenderReport):
                self._on_sender_report(participant_id, record, now)
            if isinstance(record, rtcp.ReceiverReport):
                self._on_receiver_report(participant_id, record, now)

    def _own_slot(self, participant_id: str, ssrc: int) -> Slot | None:
        slot = self._by_ssrc.get(ssrc)
        return slot if slot is not None and slot.participant == participant_id else None

    def _on_pli(self, participant_id: str, media_ssrc: int) -> None:
        slot = self._own_slot(participant_id, media_ssrc)
        if slot is not None and slot.layout.kind == "video" and slot.route.current is not None:
            self._request_keyframe(slot.route.current, force=False)

    def _on_nack(self, participant_id: str, nack: rtcp.Nack) -> None:
        """Resend what is still fresh; anything gone or stale is repaired by a keyframe."""
        slot = self._own_slot(participant_id, nack.media_ssrc)
        if slot is None or slot.history is None:
            return
        layout = slot.layout
        oldest = self._clock() - RETRANSMIT_MAX_AGE_S
        unrepairable = False
        for seq in nack.lost:
            item = slot.history.get(seq)
            if item is None or item[2] < oldest:
                unrepairable = True
                continue
            (first, marker, extensions, payload), ts, _ = item
            template = Template(first, marker, extensions, payload, extensions + payload)
            if layout.rtx_payload_type is not None and layout.rtx_ssrc is not None:
                packet = render_rtx(template, layout.rtx_payload_type, slot.rtx_sequence, ts,
                                    layout.rtx_ssrc, seq)
                slot.rtx_sequence = (slot.rtx_sequence + 1) & 0xFFFF
            else:
                packet = render(template, layout.payload_type, seq, ts, layout.ssrc)
            if slot.endpoint.send_rtp(packet):
                slot.retransmitted += 1
                self.stats.retransmitted += 1
        if unrepairable and slot.route.current is not None:
            self.stats.unrepairable_nacks += 1
            self._request_keyframe(slot.route.current, force=False)

    def _on_sender_report(self, participant_id: str, sr: rtcp.SenderReport, now: float) -> None:
        pub = self._publishers.get(participant_id)
        if pub is None:
            return
        for kind, stats in pub.stats.items():
            if stats.ssrc == sr.ssrc:
                pub.reports[kind] = (sr.ntp, sr.rtp_timestamp, now)
                stats.sender_report(sr.ntp, now)

    def _on_receiver_report(self, participant_id: str, rr: rtcp.ReceiverReport, now: float) -> None:
        for block in rr.blocks:
            slot = self._own_slot(participant_id, block.ssrc)
            if slot is None:
                continue
            slot.remote_loss = block.fraction_lost / 256
            slot.remote_jitter = block.jitter
            sent_at = slot.last_sr.get(block.lsr)
            if block.lsr and sent_at is not None:
                slot.rtt_ms = max(0.0, (now - sent_at - block.dlsr / 65536) * 1000)

    def _request_keyframe(self, source: str, force: bool) -> None:
        pub = self._publishers.get(source)
        if pub is None:
            return
        if pub.keyframes.allow(self._clock()) or force:
            self._send_pli(pub)

    def _send_pli(self, pub: Publisher) -> None:
        media = pub.endpoint.remote_ssrc("video")
        if media is not None and pub.endpoint.send_rtcp(rtcp.pli(pub.rtcp_ssrc, media)):
            self.stats.keyframe_requests += 1

    # -- periodic RTCP -------------------------------------------------------------------

    def tick(self) -> None:
        """Send receiver reports and REMB to publishers, sender reports to every slot."""
        now = self._clock()
        for pub in self._publishers.values():
            blocks = tuple(s.report(now) for s in pub.stats.values())
            if not blocks:
                continue
            packet = rtcp.receiver_report(pub.rtcp_ssrc, blocks)
            video = pub.stats.get("video")
            if video is not None and pub.remb_bps:
                packet += rtcp.remb(pub.rtcp_ssrc, pub.remb_bps, [video.ssrc])
            pub.endpoint.send_rtcp(packet)
        for slot in self._slots.values():
            self._send_sender_report(slot, now)

    def _send_sender_report(self, slot: Slot, now: float) -> None:
        source = slot.route.current
        pub = self._publishers.get(source) if source else None
        if pub is None or slot.stream.packets == 0 or slot.stream.source != source:
            return
        report = pub.reports.get(slot.layout.kind)
        if report is None:
            return
        # the source's own (NTP, RTP) pair, moved on by the time since it arrived, in this site's
        # RTP clock: the site keeps the source's audio and video in sync (lip sync)
        ntp, rtp_ts, arrived = report
        elapsed = max(0.0, now - arrived)
        ntp = (ntp + int(elapsed * (1 << 32))) & 0xFFFFFFFFFFFFFFFF
        rtp_ts = (rtp_ts + int(elapsed * slot.layout.clock_rate)) & 0xFFFFFFFF
        sr = rtcp.SenderReport(slot.layout.ssrc, ntp, slot.stream.to_site_timestamp(rtp_ts),
                               slot.stream.packets, slot.stream.octets)
        if slot.endpoint.send_rtcp(rtcp.sender_report(sr)):
            if len(slot.last_sr) >= 4:  # a report block may name any of the last few reports
                del slot.last_sr[next(iter(slot.last_sr))]
            slot.last_sr[(ntp >> 16) & 0xFFFFFFFF] = now
