"""Simulated participants: aiortc clients that join through Socket.IO like a browser would.

Each publishes a synthetic camera (its name and identity code drawn on a moving picture) and a
tone, and counts what it receives: frames, resolution, and which source's picture it decodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import socketio
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.sim.synthetic import SyntheticAudio, SyntheticVideo, read_code
from bridge.media.aiortc_adapter import restrict_host_addresses

log = logging.getLogger(__name__)
CODE_EVERY = 3  # read the identity code of every 3rd decoded frame


@dataclass(slots=True)
class ReceiveStats:
    """What one received slot delivered (the program video's, when asked without a slot)."""

    video_frames: int = 0
    audio_frames: int = 0
    resolution: tuple[int, int] | None = None
    codes: Counter[int] = field(default_factory=Counter)
    last_code: int | None = None
    code_frames: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))
    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=8192))  # video, monotonic
    unreadable: int = 0  # sampled pictures whose identity strip was damaged (decoding errors)
    late_dropped: int = 0  # decoded frames skipped: they waited behind newer ones (a busy client)


KEEP_VIDEO = 3  # decoded pictures a receiver lets wait (newer ones replace older)
KEEP_AUDIO = 50  # decoded audio frames (1 s)


class SimulatedParticipant:
    """One aiortc client: connect, offer, answer, publish, receive, leave.

    `resilient` behaves like the browser page: Socket.IO reconnects by itself (every 0.5-2 s) and
    each welcome after the first rejoins the media with a new peer connection. `local_address`
    pins the client's own address (its Socket.IO connection and ICE candidate) — a network-loss
    test drops exactly that address.
    """

    def __init__(self, url: str, token: str, name: str, code: int, *, width: int = 640,
                 height: int = 360, fps: int = 30, host_addresses: tuple[str, ...] = ("127.0.0.1",),
                 publish: bool = True, resilient: bool = False, local_address: str | None = None,
                 ca_file: str | None = None) -> None:
        self.url, self.name, self.code = url, name, code
        self._token = token
        self._video_args = (width, height, fps)
        self._host_addresses = (local_address,) if local_address else host_addresses
        self._publish = publish
        session: dict[str, Any] = {}
        if local_address is not None or ca_file is not None:
            # an https:// server whose certificate is trusted from this file only (a rehearsal's)
            tls = ssl.create_default_context(cafile=ca_file) if ca_file else None
            session["http_session"] = lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                local_addr=(local_address, 0) if local_address else None, ssl=tls or True))
        self.sio = socketio.AsyncClient(reconnection=resilient, reconnection_delay=0.5,
                                        reconnection_delay_max=2, **session)
        self.rejoins = 0  # media rejoined after a reconnect (resilient only)
        self.pc: RTCPeerConnection | None = None
        self.slots: dict[str, ReceiveStats] = {}
        self.quality: list[dict[str, Any]] = []
        self.video: SyntheticVideo | None = None
        self.low_video: SyntheticVideo | None = None  # the second layer, sent on the program only
        self.content_video: SyntheticVideo | None = None  # what it presents (present()), or None
        self._content_sender: Any = None  # the content line's sender: a track only while presenting
        self.welcome: dict[str, Any] | None = None
        self.states: list[dict[str, Any]] = []
        self.audio: SyntheticAudio | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._welcomed = asyncio.Event()
        self.sio.on("welcome", self._on_welcome)
        self.sio.on("state", self._on_state)
        self.sio.on("media:quality", self._on_quality)

    @property
    def stats(self) -> ReceiveStats:
        """The program picture and its sound."""
        program = self.slots.get("program-video", ReceiveStats())
        audio = self.slots.get("program-audio")
        program.audio_frames = audio.audio_frames if audio else 0
        return program

    async def _on_quality(self, data: dict[str, Any]) -> None:
        """Honour the bridge's request: full quality on the program, a thumbnail otherwise."""
        self.quality.append(data)
        if self.video is not None:
            self.video.set_format(int(data["width"]), int(data["height"]), int(data["maxFramerate"]))
        self._apply_low(data.get("low"))

    def _apply_low(self, low: dict[str, Any] | None) -> None:
        if self.low_video is None:
            return
        if low:  # never larger than the high layer (a small simulated camera)
            width = min(int(low["width"]), self._video_args[0] // 2)
            height = min(int(low["height"]), self._video_args[1] // 2)
            self.low_video.set_format(width, height, int(low["maxFramerate"]))
        self.low_video.set_active(bool(low))

    async def _on_welcome(self, data: dict[str, Any]) -> None:
        again = self.welcome is not None and self.pc is not None
        self.welcome = data
        self._welcomed.set()
        if again:  # a reconnect: the old peer connection belongs to a session the server ended
            self._own(self._rejoin(), "rejoin")

    async def _rejoin(self) -> None:
        try:
            await self.join_media()
            self.rejoins += 1
        except Exception as exc:  # the next reconnect tries again
            log.warning("%s could not rejoin the media: %s", self.name, exc)

    def _own(self, work: Any, what: str) -> None:
        task = asyncio.create_task(work, name=f"{what}-{self.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_state(self, data: dict[str, Any]) -> None:
        self.states.append(data)

    async def connect(self) -> None:
        await self.sio.connect(self.url, auth={"token": self._token}, transports=["websocket"],
                               wait_timeout=10)
        await asyncio.wait_for(self._welcomed.wait(), 10)

    async def join_media(self) -> None:
        restrict_host_addresses(self._host_addresses)
        if self.pc is not None:
            old, self.pc = self.pc, None
            await old.close()
            for track in (self.video, self.low_video, self.audio):
                if track is not None:
                    track.stop()
            self._content_sender = None  # the content video carries over to the new connection
        pc = self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        pc.on("track", self._on_track)
        assert self.welcome is not None
        for line in self.welcome["media"]["lines"]:
            kind, send, slot = line["kind"], line["send"] and self._publish, line["slot"]
            direction = ("sendrecv" if slot else "sendonly") if send else ("recvonly" if slot else "inactive")
            transceiver = pc.addTransceiver(kind, direction=direction)
            if send and slot == "content":  # sends only while presenting (a rejoin goes on)
                self._content_sender = transceiver.sender
                transceiver.sender.replaceTrack(self.content_video)
            elif send:
                transceiver.sender.replaceTrack(self._track(kind, line.get("layer")))
            if slot:
                self.slots.setdefault(slot, ReceiveStats())  # counts carry over a rejoin
        for t in pc.getTransceivers():
            caps = RTCRtpSender.getCapabilities(t.kind).codecs
            t.setCodecPreferences([c for c in caps if c.mimeType in ("audio/opus", "video/VP8", "video/rtx")])
        await pc.setLocalDescription(await pc.createOffer())
        reply = await self.sio.call("media:offer", {"type": "offer", "sdp": pc.localDescription.sdp},
                                    timeout=20)
        if not reply.get("ok"):
            raise RuntimeError(f"offer refused: {reply.get('error')}")
        await pc.setRemoteDescription(RTCSessionDescription(**reply["answer"]))
        route_rtx(pc, reply["answer"]["sdp"])

    def _track(self, kind: str, layer: str | None = None) -> MediaStreamTrack:
        if kind == "audio":
            self.audio = SyntheticAudio(self.code)
            return self.audio
        if layer == "low":
            width, height, fps = self._video_args
            self.low_video = SyntheticVideo(self.name, self.code, width // 2, height // 2, fps)
            self._apply_low(self.quality[-1].get("low") if self.quality else None)
            return self.low_video
        self.video = SyntheticVideo(self.name, self.code, *self._video_args)
        if self.quality:  # a rejoin keeps the quality the bridge asked for last
            q = self.quality[-1]
            self.video.set_format(int(q["width"]), int(q["height"]), int(q["maxFramerate"]))
        return self.video

    def present(self, code: int, width: int = 1280, height: int = 720, fps: int = 5) -> SyntheticVideo:
        """Send a slide (a card showing `code`) on the content line; the page's share button
        before it sends present:start."""
        if self._content_sender is None:
            raise RuntimeError("no content line: the server offers none (media.content off)")
        self.stop_presenting()
        self.content_video = SyntheticVideo(f"{self.name} slides", code, width, height, fps)
        self._content_sender.replaceTrack(self.content_video)
        return self.content_video

    def stop_presenting(self) -> None:
        if self.content_video is not None:
            self.content_video.stop()
            self.content_video = None
        if self._content_sender is not None:
            self._content_sender.replaceTrack(None)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.pc is not None and self.welcome is not None
        lines = self.welcome["media"]["lines"]
        index = next(i for i, t in enumerate(self.pc.getTransceivers()) if t.receiver.track is track)
        slot = lines[index]["slot"]
        self._own(self._consume(track, self.slots[slot]), f"recv-{slot}")

    async def _consume(self, track: MediaStreamTrack, stats: ReceiveStats) -> None:
        # aiortc's decoder thread puts every decoded frame on the track's queue, which has no
        # bound: a client whose event loop falls behind (a loaded machine) would hold minutes of
        # raw pictures. Like a browser's renderer, skip to the newest few.
        waiting: asyncio.Queue[Any] | None = getattr(track, "_queue", None)
        keep = KEEP_AUDIO if track.kind == "audio" else KEEP_VIDEO
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                while waiting is not None and waiting.qsize() > keep:
                    late = waiting.get_nowait()
                    if late is None:  # the end of the track: keep it for the next recv
                        waiting.put_nowait(None)
                        break
                    stats.late_dropped += 1
                if track.kind == "audio":
                    stats.audio_frames += 1
                    continue
                assert isinstance(frame, av.VideoFrame)
                stats.video_frames += 1
                stats.frame_times.append(time.monotonic())
                stats.resolution = (frame.width, frame.height)
                if stats.video_frames % CODE_EVERY == 1:
                    code = read_code(frame.to_ndarray(format="gray"))
                    if code is None:
                        stats.unreadable += 1
                    else:
                        stats.codes[code] += 1
                        stats.last_code = code
                        stats.code_frames.append((time.monotonic(), code))

    async def call(self, event: str, payload: Any = None) -> Any:
        return await self.sio.call(event, payload, timeout=10)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.sio.connected:
            await self.sio.disconnect()


def route_rtx(pc: RTCPeerConnection, answer_sdp: str) -> None:
    """Route each receiving line's retransmissions (RTX) to it by the answer's SSRC groups.

    aiortc's RTP router knows a receiver's media SSRC only; a retransmission on its RTX SSRC finds
    its receiver by payload type, which fails as soon as two receiving video lines share one (the
    program and the content). A browser maps them from `a=ssrc-group:FID` (RFC 4588)."""
    sections: list[list[tuple[int, int]]] = []
    for line in answer_sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        elif line.startswith("a=ssrc-group:FID ") and sections:
            ids = [int(x) for x in line.split()[1:] if x.isdigit()]
            if len(ids) == 2:
                sections[-1].append((ids[0], ids[1]))
    for transceiver, groups in zip(pc.getTransceivers(), sections, strict=False):
        receiver = transceiver.receiver
        router = getattr(receiver.transport, "_rtp_router", None)
        if router is None or transceiver.currentDirection not in ("sendrecv", "recvonly"):
            continue
        for _, rtx in groups:
            router.ssrc_table[rtx] = receiver


async def run_simulation(url: str, tokens: list[tuple[str, str, str]], seconds: float,
                         report_every: float = 2.0) -> list[SimulatedParticipant]:
    """Join (token, name, role) participants, report what each receives, leave after `seconds`."""
    parts: list[SimulatedParticipant] = []
    try:
        for index, (token, name, role) in enumerate(tokens):
            hall = role == "hall"
            p = SimulatedParticipant(url, token, name, index, width=640 if hall else 320,
                                     height=360 if hall else 180, fps=30 if hall else 15)
            await p.connect()
            await p.join_media()
            parts.append(p)
            print(f"joined {name}", flush=True)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            await asyncio.sleep(min(report_every, max(0.0, end - loop.time())))
            receiving = sum(1 for p in parts if p.stats.video_frames > 0)
            print(f"{len(parts)} joined, {receiving} receiving the program", flush=True)
    finally:
        for p in parts:
            await p.close()
    return parts
