"""Lean simulated sites for the conference benchmark: they join like a browser, publish a
pre-encoded thumbnail and a tone (encoded once), stop sending the tone while muted (as the site
page does: its audio encoding inactive), answer keyframe requests (PLI) as a browser's
encoder would (the next frame is the clip's next keyframe), and count the program they receive without
decoding it: packets, frames (marker bits), and the moments the program's source changes (a
keyframe of another size: the hall's 1280x720 or 640x360 after a site's 320x180 thumbnail clip,
or back; the bridge keeps the VP8 picture ids running across a switch, so they no longer tell).

    python -m bench.lean_sites --url URL --tokens FILE --window START END --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import socketio
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

from bench.clip import encode_clip
from bench.cliptrack import ClipSource, ClipTrack
from bench.receivers import negotiate
from bridge.media.aiortc_adapter import restrict_host_addresses
from bridge.media.rtcp import is_rtcp
from bridge.media.rtp import parse_header, vp8_descriptor_size, vp8_frame_size, vp8_is_keyframe_start
from bridge.media.sdp import media_ssrcs


@dataclass
class SiteCounts:
    joined_at: float | None = None  # wall clock
    join_s: float | None = None
    frames: int = 0  # program frames inside the window
    content_frames: int = 0  # presentation frames inside the window
    packets: int = 0
    switches: list[float] = field(default_factory=list)  # wall-clock times the source changed
    errors: list[str] = field(default_factory=list)


class LeanSite:
    def __init__(self, url: str, token: str, source: ClipSource, window: tuple[float, float]) -> None:
        self.url, self.token, self.source, self.window = url, token, source, window
        self.sio = socketio.AsyncClient(reconnection=False)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.counts = SiteCounts()
        self._video_pts: set[int] = set()
        self._last_size: tuple[int, int] | None = None  # of the program's last keyframe
        self._site: str | None = None
        self._microphone: ClipTrack | None = None
        self._content_ssrc: int | None = None

    def _follow_mutes(self, state: dict[str, Any]) -> None:
        """Send the tone only while this site is not muted (a patch carries the whole section)."""
        mutes = state.get("mutes")
        if mutes is None or self._microphone is None or self._site is None:
            return
        own = mutes.get(self._site) if isinstance(mutes, dict) else None
        self._microphone.paused = bool(own and own.get("muted"))

    async def join(self, started: float) -> None:
        welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.sio.on("welcome", lambda data: welcome.done() or welcome.set_result(data))
        self.sio.on("state", self._follow_mutes)
        self.sio.on("state:snapshot", self._follow_mutes)
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"])
        hello = await asyncio.wait_for(welcome, 30)
        lines = hello["media"]["lines"]
        self._site = (hello["you"].get("site") or {}).get("id")
        for line in lines:
            # one picture, the thumbnail: the low line is offered inactive (no second layer), the
            # content line received only (a lean site never presents)
            if line["send"] and line.get("layer") != "low" and line["slot"] != "content":
                t = self.pc.addTransceiver(line["kind"], direction="sendrecv" if line["slot"] else "sendonly")
                track = self.source.track(line["kind"])
                t.sender.replaceTrack(track)
                self.source.answer_pli(t.sender)
                if line["kind"] == "audio":
                    self._microphone = track
            else:
                self.pc.addTransceiver(line["kind"], direction="recvonly" if line["slot"] else "inactive")
        self._follow_mutes(hello["state"])
        await negotiate(self.pc, self.sio, self._video_pts, self._tap, connect_timeout=30)
        slots = [line["slot"] for line in lines]
        if "content" in slots:  # the bridge's content SSRC, told apart from the program's
            ssrcs = media_ssrcs(self.pc.remoteDescription.sdp)[slots.index("content")]
            self._content_ssrc = ssrcs[0] if ssrcs else None
        self.counts.joined_at = time.time()
        self.counts.join_s = time.time() - started

    def _tap(self, dtls: Any) -> None:
        connection = dtls.transport._connection
        queued = connection.data_received
        counts, (start, end) = self.counts, self.window

        def received(data: bytes, component: int) -> None:
            rx = dtls._rx_srtp
            if rx is None or not 127 < data[0] < 192 or is_rtcp(data):
                queued(data, component)  # DTLS, STUN and RTCP: aiortc's own path (PLI reaches the clip)
                return
            try:
                plain = rx.unprotect(data)
            except Exception:
                return
            if plain[1] & 0x7F not in self._video_pts:
                return
            header = parse_header(plain)
            if header is None:
                return
            if int.from_bytes(plain[8:12], "big") == self._content_ssrc:
                if start <= time.time() < end:
                    counts.content_frames += header.marker
                return
            payload = plain[header.payload_offset :]
            if vp8_is_keyframe_start(payload):  # a source change: a keyframe of another size
                size = vp8_frame_size(payload[vp8_descriptor_size(payload) :])
                if size is not None:
                    if self._last_size is not None and size != self._last_size:
                        counts.switches.append(time.time())
                    self._last_size = size
            if start <= time.time() < end:
                counts.packets += 1
                counts.frames += header.marker

        connection.data_received = received

    async def close(self) -> None:
        await self.pc.close()
        if self.sio.connected:
            await self.sio.disconnect()


async def run(url: str, tokens: list[str], window: tuple[float, float],
              start_at: float) -> list[dict[str, Any]]:
    restrict_host_addresses(["127.0.0.1"])
    source = ClipSource(encode_clip(320, 180, seconds=2.0, bitrate=150_000))
    source.start()
    sites = [LeanSite(url, token, source, window) for token in tokens]
    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    results = await asyncio.gather(*(s.join(started) for s in sites), return_exceptions=True)
    for site, result in zip(sites, results, strict=True):
        if isinstance(result, BaseException):
            site.counts.errors.append(f"join: {result!r}")
    await asyncio.sleep(max(0.0, window[1] - time.time()) + 0.2)
    out = [asdict(s.counts) for s in sites]
    await source.stop()
    for s in sites:
        await s.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--window", nargs=2, type=float, required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.tokens) as f:
        tokens = [line.strip() for line in f if line.strip()]
    import uvloop

    uvloop.install()
    result = asyncio.run(run(args.url, tokens, tuple(args.window), args.start_at))  # type: ignore[arg-type]
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
