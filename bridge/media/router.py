"""The media router: applies the pure forwarding decisions to real endpoints.

Incoming packets wait in a bounded backlog and are fanned out in arrival order, in turns of at
most a few milliseconds, so a keyframe burst to every site never stalls the event loop. The
backlog keeps two queues: what every site needs (audio, the program's picture) and thumbnails (the
other sources' pictures, for the consoles); when it is full a thumbnail gives way first. Per packet: parse
once, count it for the publisher's receiver reports, drop muted audio, then for the slots that
want this source only: admit (keyframe-gated), render the site's numbers on a template shared
per extension layout, keep it for NACKs, send. Nothing here awaits. `tick()` sends the periodic
RTCP (receiver reports and REMB to publishers, translated sender reports to every site).

Routes point at *feeds*: a publisher's stream (`audio`, `video`, `video-low`). Each receiving
site's program picture comes from the layer the `LayerAllocator` gives it, from what the site's
browser reports (REMB, receiver-report loss); a layer change is a switch like any other (same
SSRC, continuous numbers, on a keyframe of the target layer, VP8 picture ids increasing). The
router writes abs-send-time at its own send time, so a site's estimate measures the bridge's
path to it, and pads a low-layer site's traffic with copies of recent packets (`_probe`) so that
its estimate can rise again when its line recovers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Protocol

from bridge.media import rtcp
from bridge.media.forwarder import History, OutStream, PictureIds, Route, Throttle
from bridge.media.layers import LOW_LAYER, LayerAllocator, LayerRules
from bridge.media.policy import (
    AUDIO_STREAM,
    CONTENT,
    CONTENT_STREAM,
    HIGH,
    LOW,
    LOW_STREAM,
    PROGRAM_VIDEO,
    VIDEO_STREAM,
    Scene,
    quality_for,
    source_for,
    stream_kind,
)
from bridge.media.rtp import (
    FORWARDED_URIS,
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    Template,
    abs_send_time,
    audio_level,
    build_template,
    parse_header,
    render,
    render_rtx,
    restamp,
    vp8_ids,
    vp8_is_keyframe_start,
    vp8_renumber,
)
from bridge.media.stats import StreamStats

HISTORY_PACKETS = 512  # per video slot: ~3 s of a 1.5 Mbps program
# A packet older than this is not worth resending: the receiver has moved on (a site back from a
# network loss asks for everything it missed); a keyframe from the source repairs it instead.
RETRANSMIT_MAX_AGE_S = 1.0
SWITCH_MEMORY_S = 5.0  # NACKs for packets sent before a switch's keyframe are ignored this long
Kept = tuple[int, int, bytes, bytes]  # a template's first byte, marker, extensions, payload
Sent = tuple[Kept, int, float]  # and the timestamp and send time of one copy
BACKLOG_PACKETS = 8192  # incoming packets waiting for their fan-out (~1.5 s of 66 sites and the hall)
DRAIN_BUDGET_S = 0.002  # fan-out work per loop turn before other callbacks get their turn
AudioLevelListener = Callable[[str, int, bool, float], None]  # source, -dBov, voice, now
Feed = tuple[str, str]  # a publisher's stream: (participant, "audio" | "video" | "video-low")
LOW_LIVE_S = 2.0  # a low layer is used while its last packet is this recent
LOSS_WINDOW_S, LOSS_WINDOW_PACKETS = 1.0, 40  # a site's program loss is judged over this much
LOSS_MARK_S, LOSS_MARKS = 0.25, 12  # the window's possible starts: one per 0.25 s, 3 s of them
PROBE_INTERVAL_S = 0.05  # probing pads low-layer sites in steps this far apart
PROBE_MAX_PACKETS = 40  # per site and step (~2.6 Mbps of 1.1 KB copies)
FEC_LOSS_CAP = 64  # of 256: a site's loss passed on to a sound's publisher, at most 25 % (one very
# bad line must not spend everyone's sound bits on redundancy)


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

    def remote_ssrc(self, stream: str) -> int | None: ...


@dataclass(slots=True)
class Slot:
    """One stream the bridge sends to one participant."""

    participant: str
    name: str
    endpoint: Endpoint
    layout: SlotLayout
    route: Route[Feed]
    stream: OutStream
    layout_key: int  # slots with the same extension ids share one rendered template per packet
    extension_ids: dict[str, int]
    # atoms and tuples of atoms only, so the collector stops tracking each entry after its first
    # pass and never walks 66 x 512 of them again
    history: History[Sent] | None
    pictures: PictureIds | None = None  # video: the VP8 picture ids this site has seen
    rtx_sequence: int = 0
    sent: int = 0
    dropped: int = 0
    retransmitted: int = 0
    remote_loss: float = 0.0  # fraction the site reports lost (RTCP RR)
    # (at, extended highest sequence, cumulative lost) of recent reports, LOSS_MARK_S apart: the
    # loss window slides back to the newest one old enough
    loss_marks: deque[tuple[float, int, int]] = field(
        default_factory=lambda: deque(maxlen=LOSS_MARKS))
    remote_jitter: int = 0
    rtt_ms: float | None = None
    # (first sequence number, at) of the keyframe the slot last switched source (or layer) on:
    # what it sent before is of no use to the site's decoder any more
    switched: tuple[int, float] | None = None
    last_sr: dict[int, float] = field(default_factory=dict)  # middle NTP bits -> sent at


@dataclass(slots=True)
class Publisher:
    endpoint: Endpoint
    rtcp_ssrc: int
    stats: dict[str, StreamStats] = field(default_factory=dict)  # stream -> stats
    # stream -> the last sender report (NTP time, RTP timestamp) and when it arrived (monotonic s)
    reports: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    keyframes: dict[str, Throttle] = field(default_factory=dict)  # stream -> PLI spacing
    rates: dict[str, float] = field(default_factory=dict)  # stream -> bits/s over the last tick
    counted: dict[str, tuple[int, float]] = field(default_factory=dict)  # stream -> octets, when
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
    layer_changes: int = 0  # a site's program moved to the other layer
    probe_packets: int = 0  # copies sent to let a low-layer site's estimate rise


class MediaRouter:
    def __init__(self, scene: Scene, keyframe_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 bitrates_bps: dict[str, int] | None = None,
                 on_audio_level: AudioLevelListener | None = None,
                 layer_rules: LayerRules | None = None, estimate_layers: bool = False) -> None:
        self._clock = clock
        self._interval = keyframe_interval_s
        self._scene = scene
        self._bitrates = {HIGH: 1_500_000, LOW: 300_000, "thumbnail": 150_000, CONTENT: 1_500_000,
                          **(bitrates_bps or {})}
        self.layers = LayerAllocator(layer_rules or LayerRules(
            high_bps=self._bitrates[HIGH], low_bps=self._bitrates[LOW]))
        # whether a low REMB alone sends a site down (loss and a technician's mark always do;
        # the estimate always brings it back): off by default, since on a busy machine
        # Chromium's delay-based estimate reads scheduling jitter as congestion (bench.impair)
        self._estimate_layers = estimate_layers
        self._probing: dict[str, float] = {}  # site -> what its traffic is padded up to (bits/s)
        self._probe_handle: asyncio.TimerHandle | None = None
        # each incoming video stream's last (picture id, TL0PICIDX): where a switch continues from
        self._vp8_last: dict[Hashable, tuple[int | None, int | None]] = {}  # (feed, SSRC) ->
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
        pub = Publisher(endpoint, random.getrandbits(32) or 1)
        pub.level_ext = endpoint.inbound_extension_ids("audio").get(URI_AUDIO_LEVEL)
        pub.remb_bps = self._remb_for(pid)
        self._publishers[pid] = pub
        for feed in {s.route.pending for s in self._slots.values()
                     if s.route.pending is not None and s.route.pending[0] == pid}:
            self._request_keyframe(feed, force=True)

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
                PictureIds() if layout.kind == "video" else None,
                random.getrandbits(16))
            self._slots[(pid, name)] = slot
            self._by_ssrc[layout.ssrc] = slot
            self._route(slot, source_for(self._scene, pid, name))

    def remove(self, participant_id: str) -> None:
        self._publishers.pop(participant_id, None)
        self.layers.forget(participant_id)
        gone = [k for k in self._vp8_last if isinstance(k, tuple) and k[0][0] == participant_id]
        for slot in self._slots.values():
            if slot.pictures is not None and slot.pictures.key in gone:
                slot.pictures.stream_gone(self._vp8_last[slot.pictures.key])
        for stale in gone:
            del self._vp8_last[stale]
        self._probing.pop(participant_id, None)
        for key in [k for k in self._slots if k[0] == participant_id]:
            slot = self._slots.pop(key)
            self._by_ssrc.pop(slot.layout.ssrc, None)
            self._unindex(slot, slot.route.current)
            self._unindex(slot, slot.route.pending)
        for feed, slots in self._by_source.items():
            if feed[0] != participant_id:
                continue
            for slot in list(slots.values()):  # unindexing edits this very dict
                self._unindex(slot, feed)
                slot.route.source_gone(feed)
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

    def publisher_rate(self, participant_id: str, stream: str = VIDEO_STREAM) -> float:
        """What a publisher's stream brings in (bits/s over the last tick; 0 before one)."""
        pub = self._publishers.get(participant_id)
        return pub.rates.get(stream, 0.0) if pub is not None else 0.0

    def publisher_stats(self, participant_id: str) -> dict[str, StreamStats]:
        pub = self._publishers.get(participant_id)
        return dict(pub.stats) if pub else {}

    # -- control -------------------------------------------------------------------------

    def set_scene(self, scene: Scene) -> None:
        """Re-route every slot for a new scene (program switch, listen-in, heard sources)."""
        self._scene = scene
        wanted: set[Feed] = set()
        for slot in self._slots.values():
            feed = self._route(slot, source_for(scene, slot.participant, slot.name), ask=False)
            if feed is not None:
                wanted.add(feed)
        for feed in wanted:  # one keyframe request per new feed, however many slots wait
            self._request_keyframe(feed, force=True)
        for pid, pub in self._publishers.items():
            pub.remb_bps = self._remb_for(pid)

    def _remb_for(self, publisher: str) -> int:
        """The REMB cap a publisher is told: its level's bitrate, and the low layer's beside the
        high one (a browser's estimate covers every stream it sends)."""
        level = quality_for(self._scene, publisher)
        content = self._bitrates[CONTENT] if publisher == self._scene.presenter else 0
        return self._bitrates[level] + (self._bitrates[LOW] if level == HIGH else 0) + content

    def _feed(self, slot: Slot, source: str | None) -> Feed | None:
        """The feed a slot takes from a source: its program picture in the site's layer (the low
        one only while the source sends it), the source's only stream otherwise."""
        if source is None:
            return None
        if slot.layout.kind == "audio":
            return (source, AUDIO_STREAM)
        if slot.name == CONTENT:
            return (source, CONTENT_STREAM)
        if slot.name == PROGRAM_VIDEO and self.layers.layer(slot.participant) == LOW_LAYER \
                and self._low_live(source):
            return (source, LOW_STREAM)
        return (source, VIDEO_STREAM)

    def _low_live(self, source: str) -> bool:
        pub = self._publishers.get(source)
        stats = pub.stats.get(LOW_STREAM) if pub is not None else None
        return stats is not None and self._clock() - stats.last_arrival < LOW_LIVE_S

    # -- layers --------------------------------------------------------------------------

    def layer_of(self, participant_id: str) -> dict[str, object]:
        """The program layer a site is given and why: for the console (layer, estimate, pinned,
        the layer its picture comes from now)."""
        state = self.layers.sites.get(participant_id)
        slot = self._slots.get((participant_id, PROGRAM_VIDEO))
        feed = slot.route.current if slot is not None else None
        return {"layer": self.layers.layer(participant_id),
                "estimate_bps": None if state is None or state.estimate_bps is None
                else int(state.estimate_bps),
                "pinned": bool(state and state.pinned),
                "why": state.changes[-1][2] if state is not None and state.changes else None,
                "receiving": None if feed is None else (LOW if feed[1] == LOW_STREAM else HIGH)}

    def pin_low(self, participant_id: str, low: bool) -> None:
        """A technician keeps a site on the low layer ("đường truyền yếu"), or lets it go."""
        if self.layers.pin(participant_id, low, self._clock()) is not None:
            self._relayer(participant_id)

    def _relayer(self, participant_id: str) -> None:
        """The site's program picture follows its layer (a switch on the target's keyframe)."""
        slot = self._slots.get((participant_id, PROGRAM_VIDEO))
        if slot is None:
            return
        before = slot.route.pending or slot.route.current
        self._route(slot, source_for(self._scene, participant_id, PROGRAM_VIDEO))
        after = slot.route.pending or slot.route.current
        if before != after:
            self.stats.layer_changes += 1

    def set_muted(self, source: str, muted: bool) -> None:
        """A muted source's audio is dropped here, whatever its browser sends."""
        if muted:
            feed = (source, AUDIO_STREAM)
            if source not in self._muted:
                for slot in self._by_source.get(feed, {}).values():
                    if slot.route.current == feed:
                        slot.stream.pause()  # its numbers resume without a gap on unmute
            self._muted.add(source)
        else:
            self._muted.discard(source)

    def is_muted(self, source: str) -> bool:
        return source in self._muted

    def _route(self, slot: Slot, participant: str | None, ask: bool = True) -> Feed | None:
        """Point a slot at a source's feed; the feed to ask for a keyframe when the route changed."""
        source = self._feed(slot, participant)
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
                self._by_source.setdefault(new, {})[(slot.participant, slot.name)] = slot
        if not needs_keyframe or source is None:
            return None
        if ask:
            self._request_keyframe(source, force=True)
        return source

    def _unindex(self, slot: Slot, feed: Feed | None) -> None:
        index = self._by_source.get(feed) if feed is not None else None
        if index is not None:
            index.pop((slot.participant, slot.name), None)

    # -- the packet path -----------------------------------------------------------------

    def on_rtp(self, participant_id: str, kind: str, data: bytes) -> None:
        """Take a packet of stream `kind` (`audio`, `video`, `video-low`) from the socket
        callback; the fan-out runs in budgeted turns (`_drain`). Full: the oldest thumbnail
        gives way (its moment has passed, and only consoles miss it); audio or the program only
        when no thumbnail is waiting."""
        self._arrivals += 1
        entry = (self._arrivals, participant_id, kind, data)
        thumbnails = self._thumbnails
        if kind == VIDEO_STREAM and participant_id != self._scene.program:
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
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        self._probing.clear()
        self._backlog.clear()
        self._thumbnails.clear()

    def _forward_packet(self, participant_id: str, stream: str, data: bytes) -> None:
        pub = self._publishers.get(participant_id)
        header = parse_header(data)
        if pub is None or header is None:
            return
        now = self._clock()
        self.stats.received += 1
        audio = stream == AUDIO_STREAM
        stats = pub.stats.get(stream)
        if stats is None or stats.ssrc != header.ssrc:
            stats = pub.stats[stream] = StreamStats(header.ssrc, 48000 if audio else 90000)
        stats.add(header.sequence, header.timestamp, len(data), now)
        if audio:
            level = audio_level(header, pub.level_ext) if self._on_audio_level is not None else None
            if level is not None and self._on_audio_level is not None:
                voice, dbov = level
                self._on_audio_level(participant_id, dbov, voice, now)
            if participant_id in self._muted:
                self.stats.muted += 1
                return
        feed = (participant_id, stream)
        slots = self._by_source.get(feed)
        if not slots:
            return
        payload = memoryview(data)[header.payload_offset :]
        keyframe = not audio and vp8_is_keyframe_start(payload)
        ids = None if audio else vp8_ids(payload)
        send_time = None if audio else abs_send_time(now)
        source_ids: dict[str, int] | None = None
        templates: dict[tuple[int, int | None, int | None], tuple[Template, Kept]] = {}
        waiting = False
        forwarded = 0
        sequence, timestamp, ssrc = header.sequence, header.timestamp, header.ssrc
        stream_key = (feed, ssrc)
        for slot in slots.values():  # switching unindexes from other feeds only
            route = slot.route
            switched_here = False
            if route.current != feed:  # pending: switches only on a keyframe
                previous = route.current
                if not route.admit(feed, keyframe):
                    waiting = waiting or route.pending == feed
                    continue
                if previous is not None:
                    self._unindex(slot, previous)  # the switch completed on this keyframe
                    switched_here = True
            pid = tl0 = None
            pictures = slot.pictures
            if ids is not None and pictures is not None:
                if pictures.key != stream_key:
                    pictures.rebase(stream_key, ids.picture_id, ids.long_id, ids.tl0_index,
                                    self._vp8_last.get(pictures.key))
                if pictures.pid_offset or pictures.tl0_offset:
                    pid, tl0 = pictures.out(ids.picture_id, ids.long_id, ids.tl0_index)
            key = (slot.layout_key, pid, tl0)
            built = templates.get(key)
            if built is None:
                if source_ids is None:
                    source_ids = pub.endpoint.inbound_extension_ids(stream_kind(stream))
                renumbered = None if pid is None and tl0 is None else \
                    vp8_renumber(bytes(payload), pid, tl0)
                t = build_template(data, header, source_ids, slot.extension_ids, send_time, renumbered)
                built = templates[key] = (t, (t.first, t.marker, t.extensions, t.payload))
            template, kept = built
            out = slot.stream
            seq, ts = out.rewrite(participant_id, ssrc, sequence, timestamp, now)
            if switched_here:
                slot.switched = (seq, now)
            packet = render(template, out.payload_type, seq, ts, out.ssrc)
            history = slot.history
            if history is not None:
                history.put(seq, (kept, ts, now))
            if slot.endpoint.send_rtp(packet):
                slot.sent += 1
                out.octets += len(packet)
                forwarded += 1
            else:
                slot.dropped += 1
                self.stats.dropped += 1
        self.stats.forwarded += forwarded
        if ids is not None:
            self._vp8_last[stream_key] = (ids.picture_id, ids.tl0_index)
        if waiting and self._keyframes(pub, stream).allow(now):
            self._send_pli(pub, stream)

    # -- feedback ------------------------------------------------------------------------

    def on_rtcp(self, participant_id: str, data: bytes) -> None:
        now = self._clock()
        for record in rtcp.parse(data):
            if isinstance(record, rtcp.Pli):
                self._on_pli(participant_id, record.media_ssrc)
            elif isinstance(record, rtcp.Nack):
                self._on_nack(participant_id, record)
            elif isinstance(record, rtcp.Remb):
                self._on_remb(participant_id, record, now)
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
        now = self._clock()
        oldest = now - RETRANSMIT_MAX_AGE_S
        unrepairable = False
        switched = slot.switched
        since = switched[0] if switched is not None and now - switched[1] < SWITCH_MEMORY_S else None
        for seq in nack.lost:
            if since is not None and (seq - since) & 0x8000:
                continue  # before the keyframe the slot switched on: the decoder has moved on
            item = slot.history.get(seq)
            if item is None or item[2] < oldest:
                unrepairable = True
                continue
            if self._resend(slot, seq, item, now):
                slot.retransmitted += 1
                self.stats.retransmitted += 1
        if unrepairable and slot.route.current is not None:
            self.stats.unrepairable_nacks += 1
            self._request_keyframe(slot.route.current, force=False)

    def _resend(self, slot: Slot, seq: int, item: Sent, now: float) -> bool:
        """A kept packet again (on the RTX stream when negotiated), stamped with this send time."""
        (first, marker, extensions, payload), ts, _ = item
        ext_id = slot.extension_ids.get(URI_ABS_SEND_TIME)
        if ext_id is not None:
            extensions = restamp(extensions, ext_id, abs_send_time(now))
        template = Template(first, marker, extensions, payload, extensions + payload)
        layout = slot.layout
        if layout.rtx_payload_type is not None and layout.rtx_ssrc is not None:
            packet = render_rtx(template, layout.rtx_payload_type, slot.rtx_sequence, ts,
                                layout.rtx_ssrc, seq)
            slot.rtx_sequence = (slot.rtx_sequence + 1) & 0xFFFF
        else:
            packet = render(template, layout.payload_type, seq, ts, layout.ssrc)
        return slot.endpoint.send_rtp(packet)

    def _on_remb(self, participant_id: str, remb: rtcp.Remb, now: float) -> None:
        """A site's bandwidth estimate: its program layer may change (and its probing)."""
        slot = self._slots.get((participant_id, PROGRAM_VIDEO))
        if slot is None or (remb.ssrcs and slot.layout.ssrc not in remb.ssrcs):
            return  # an estimate for other streams (aiortc estimates per receiver)
        # without estimate_layers, a low estimate does not send a site down (loss and pins do)
        change = self.layers.estimate(participant_id, remb.bitrate_bps, now,
                                      self._high_rate(slot), down=self._estimate_layers)
        if change is not None:
            self._relayer(participant_id)
        self._plan_probe(participant_id, now)

    def _high_rate(self, slot: Slot) -> float | None:
        """What the high layer of the slot's source carries now (bits/s), once measured."""
        feed = slot.route.current
        pub = self._publishers.get(feed[0]) if feed is not None else None
        return pub.rates.get(VIDEO_STREAM) if pub is not None else None

    def _on_sender_report(self, participant_id: str, sr: rtcp.SenderReport, now: float) -> None:
        pub = self._publishers.get(participant_id)
        if pub is None:
            return
        for stream, stats in pub.stats.items():
            if stats.ssrc == sr.ssrc:
                pub.reports[stream] = (sr.ntp, sr.rtp_timestamp, now)
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
            if slot.name == PROGRAM_VIDEO and slot.route.current is not None:
                lost = self._window_loss(slot, block, now)
                if lost is not None and self.layers.loss(participant_id, lost, now) is not None:
                    self._relayer(participant_id)

    @staticmethod
    def _window_loss(slot: Slot, block: rtcp.ReportBlock, now: float) -> float | None:
        """The share of the program's packets a site lost over the latest window (the last
        LOSS_WINDOW_S or more, LOSS_WINDOW_PACKETS or more), from the cumulative counts of its
        reports; None until there is one. A browser adds a report block to every NACK and PLI it
        sends, so one block's own fraction can cover a handful of packets (1 lost of 6 is not a
        line losing 17 %); the window slides, so a line that starts losing is seen within about
        a second of it, not up to two."""
        marks = slot.loss_marks
        if marks and block.highest_sequence < marks[-1][1]:
            marks.clear()  # the numbering restarted (a new connection): a new history
        if not marks or now - marks[-1][0] >= LOSS_MARK_S:
            marks.append((now, block.highest_sequence, block.packets_lost))
        for at, highest, lost in reversed(marks):
            expected = block.highest_sequence - highest
            if now - at >= LOSS_WINDOW_S and expected >= LOSS_WINDOW_PACKETS:
                return max(0, block.packets_lost - lost) / expected
        return None

    def _keyframes(self, pub: Publisher, stream: str) -> Throttle:
        throttle = pub.keyframes.get(stream)
        if throttle is None:
            throttle = pub.keyframes[stream] = Throttle(self._interval)
        return throttle

    def _request_keyframe(self, feed: Feed, force: bool) -> None:
        pub = self._publishers.get(feed[0])
        if pub is None:
            return
        if self._keyframes(pub, feed[1]).allow(self._clock()) or force:
            self._send_pli(pub, feed[1])

    def _send_pli(self, pub: Publisher, stream: str) -> None:
        media = pub.endpoint.remote_ssrc(stream)
        if media is not None and pub.endpoint.send_rtcp(rtcp.pli(pub.rtcp_ssrc, media)):
            self.stats.keyframe_requests += 1

    # -- probing -------------------------------------------------------------------------

    def _plan_probe(self, participant_id: str, now: float) -> None:
        """How much padding a low-layer site gets: up to what the allocator asks for, less what
        it is sent anyway (its low layer and sound)."""
        target = self.layers.probe_bps(participant_id, now)
        if target is None:
            self._probing.pop(participant_id, None)
            return
        slot = self._slots.get((participant_id, PROGRAM_VIDEO))
        if slot is None or slot.layout.rtx_ssrc is None or slot.history is None:
            return  # no RTX to pad with (aiortc and browsers negotiate it)
        feed = slot.route.current
        pub = self._publishers.get(feed[0]) if feed is not None else None
        carried = (pub.rates.get(feed[1], 0.0) if pub is not None and feed is not None else 0.0) \
            + self.layers.rules.audio_bps
        padding = target - carried
        if padding <= 0:
            self._probing.pop(participant_id, None)
            return
        self._probing[participant_id] = padding
        if self._probe_handle is None:
            loop = self._loop or self._bind_loop()
            self._probe_handle = loop.call_later(PROBE_INTERVAL_S, self._probe)

    def _probe(self) -> None:
        """One padding step for every probing site: copies of its latest packets on its RTX
        stream (the browser counts them in its estimate and drops them as duplicates)."""
        self._probe_handle = None
        now = self._clock()
        for participant_id, bps in list(self._probing.items()):
            slot = self._slots.get((participant_id, PROGRAM_VIDEO))
            if slot is None or slot.history is None or slot.stream.packets == 0:
                self._probing.pop(participant_id, None)
                continue
            budget = bps * PROBE_INTERVAL_S / 8
            seq = slot.stream.last_sequence
            for back in range(PROBE_MAX_PACKETS):
                if budget <= 0:
                    break
                item = slot.history.get((seq - back) & 0xFFFF)
                if item is None:
                    break
                if self._resend(slot, (seq - back) & 0xFFFF, item, now):
                    self.stats.probe_packets += 1
                budget -= len(item[0][3]) + 40
        if self._probing:
            self._probe_handle = (self._loop or self._bind_loop()).call_later(
                PROBE_INTERVAL_S, self._probe)

    # -- periodic RTCP -------------------------------------------------------------------

    def tick(self) -> None:
        """Send receiver reports and REMB to publishers, sender reports to every slot; measure
        what each publisher's streams carry; let time complete the layer holds."""
        now = self._clock()
        heard_loss = self._heard_audio_loss()
        for pid, pub in self._publishers.items():
            for stream, stats in pub.stats.items():
                before = pub.counted.get(stream)
                if before is not None and now > before[1]:
                    pub.rates[stream] = 8 * (stats.octets - before[0]) / (now - before[1])
                pub.counted[stream] = (stats.octets, now)
            blocks = tuple(s.report(now) for s in pub.stats.values())
            if not blocks:
                continue
            audio, worst = pub.stats.get(AUDIO_STREAM), heard_loss.get(pid, 0)
            if audio is not None and worst:
                blocks = tuple(replace(b, fraction_lost=max(b.fraction_lost, worst))
                               if b.ssrc == audio.ssrc else b for b in blocks)
            packet = rtcp.receiver_report(pub.rtcp_ssrc, blocks)
            video = [s.ssrc for k, s in pub.stats.items() if k != AUDIO_STREAM]
            if video and pub.remb_bps:
                packet += rtcp.remb(pub.rtcp_ssrc, pub.remb_bps, video)
            pub.endpoint.send_rtcp(packet)
        for participant_id in self.layers.tick(now):
            self._relayer(participant_id)
        for participant_id, state in self.layers.sites.items():
            if state.layer == LOW_LAYER:
                self._relayer(participant_id)  # its source's low layer may have started (or gone)
                self._plan_probe(participant_id, now)
        for slot in self._slots.values():
            self._send_sender_report(slot, now)

    def _heard_audio_loss(self) -> dict[str, int]:
        """Per publisher, the worst loss (RR fraction, of 256) a site reports on the publisher's
        sound, up to FEC_LOSS_CAP. The bridge reports it to the publisher as the loss of its audio
        (the cumulative counts stay the bridge's own, so its congestion control is not misled):
        its Opus encoder puts in-band FEC in for the lossy line the sound crosses after the
        bridge, which it would otherwise never hear of."""
        worst: dict[str, int] = {}
        for slot in self._slots.values():
            feed = slot.route.current
            if feed is None or feed[1] != AUDIO_STREAM or not slot.remote_loss:
                continue
            lost = min(FEC_LOSS_CAP, int(slot.remote_loss * 256))
            worst[feed[0]] = max(worst.get(feed[0], 0), lost)
        return worst

    def _send_sender_report(self, slot: Slot, now: float) -> None:
        feed = slot.route.current
        pub = self._publishers.get(feed[0]) if feed is not None else None
        if pub is None or feed is None or slot.stream.packets == 0 or slot.stream.source != feed[0]:
            return
        report = pub.reports.get(feed[1])
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
