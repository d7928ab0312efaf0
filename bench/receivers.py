"""Lean benchmark receivers: aiortc peers that join through Socket.IO and count, never decode.

Each receiver offers the m-lines its welcome lists (receive only), then counts the SRTP packets
it decrypts straight from the socket callback: packets, video frames (marker bits), and gaps in
sequence numbers, inside a measurement window given as wall-clock times. So the 2-core machine
measures the forwarding unit, not the receivers. Like a browser, each sends a receiver report
every second (the bridge marks a peer that sends nothing for 3 s as lost and closes it after 30).

    python -m bench.receivers --url URL --tokens FILE --window START END --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import socketio
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtcpRrPacket

from bridge.media.aiortc_adapter import restrict_host_addresses
from bridge.media.rtcp import is_rtcp


async def negotiate(pc: RTCPeerConnection, sio: socketio.AsyncClient, video_pts: set[int],
                    tap: Callable[[Any], None], connect_timeout: float) -> None:
    """Offer the transceivers already added (`media:offer`), apply the answer, note the VP8
    payload types in `video_pts`, tap the bundled transport before media flows, wait until
    connected."""
    await pc.setLocalDescription(await pc.createOffer())
    reply = await sio.call("media:offer", {"type": "offer", "sdp": pc.localDescription.sdp}, timeout=30)
    await pc.setRemoteDescription(RTCSessionDescription(**reply["answer"]))
    for t in pc.getTransceivers():
        video_pts.update(c.payloadType for c in t._codecs if c.mimeType == "video/VP8")
    tap(pc.getTransceivers()[0].receiver.transport)
    connected = asyncio.Event()
    pc.on("connectionstatechange", lambda: pc.connectionState == "connected" and connected.set())
    if pc.connectionState != "connected":
        await asyncio.wait_for(connected.wait(), connect_timeout)


RR_EVERY_S = 1.0


@dataclass
class Counts:
    packets: int = 0
    video_packets: int = 0
    video_frames: int = 0
    lost: int = 0
    lost_by_kind: dict[str, int] = field(default_factory=dict)  # video / audio
    srtp_errors: int = 0
    other: int = 0
    joined_s: float | None = None
    _next_seq: dict[int, int] = field(default_factory=dict)


class LeanReceiver:
    def __init__(self, url: str, token: str, window: tuple[float, float]) -> None:
        self.url, self.token, self.window = url, token, window
        self.sio = socketio.AsyncClient(reconnection=False)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.counts = Counts()
        self._video_pts: set[int] = set()
        self._reports: asyncio.Task[None] | None = None

    async def join(self) -> None:
        started = time.monotonic()
        welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.sio.on("welcome", lambda data: welcome.done() or welcome.set_result(data))
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"])
        lines = (await asyncio.wait_for(welcome, 20))["media"]["lines"]
        for line in lines:
            self.pc.addTransceiver(line["kind"], direction="recvonly" if line["slot"] else "inactive")
        await negotiate(self.pc, self.sio, self._video_pts, self._tap, connect_timeout=20)
        self.counts.joined_s = time.monotonic() - started

    async def _report(self, dtls: Any) -> None:
        """An (empty) RTCP receiver report every second, as browsers send."""
        report = bytes(RtcpRrPacket(ssrc=secrets.randbits(32)))  # a receive-only peer's own SSRC
        while True:
            await asyncio.sleep(RR_EVERY_S)
            with contextlib.suppress(ConnectionError):
                await dtls._send_rtp(report)

    def _tap(self, dtls: Any) -> None:
        self._reports = asyncio.create_task(self._report(dtls), name="receiver-reports")
        connection = dtls.transport._connection
        queued = connection.data_received
        counts, start, end = self.counts, *self.window

        def received(data: bytes, component: int) -> None:
            rx = dtls._rx_srtp
            if rx is None or not 127 < data[0] < 192:
                queued(data, component)
                return
            if is_rtcp(data):
                return
            try:  # every packet, counted or not: libsrtp follows the rollover counter
                plain = rx.unprotect(data)
            except Exception:
                counts.srtp_errors += 1
                return
            now = time.time()
            if not start <= now < end:
                return
            counts.packets += 1
            ssrc = int.from_bytes(plain[8:12], "big")
            seq = int.from_bytes(plain[2:4], "big")
            expected = counts._next_seq.get(ssrc)
            if expected is not None and seq != expected:
                gap = (seq - expected) % 65536
                if gap < 1000:
                    counts.lost += gap
                    kind = "video" if plain[1] & 0x7F in self._video_pts else "audio"
                    counts.lost_by_kind[kind] = counts.lost_by_kind.get(kind, 0) + gap
            counts._next_seq[ssrc] = (seq + 1) % 65536
            if plain[1] & 0x7F in self._video_pts:
                counts.video_packets += 1
                if plain[1] & 0x80:
                    counts.video_frames += 1

        connection.data_received = received

    async def close(self) -> None:
        if self._reports is not None:
            self._reports.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reports
        await self.pc.close()
        if self.sio.connected:
            await self.sio.disconnect()


async def run(url: str, tokens: list[str], window: tuple[float, float]) -> list[dict[str, Any]]:
    restrict_host_addresses(["127.0.0.1"])
    receivers = [LeanReceiver(url, token, window) for token in tokens]
    await asyncio.gather(*(r.join() for r in receivers))
    await asyncio.sleep(max(0.0, window[1] - time.time()) + 0.2)
    out = []
    for r in receivers:
        c = asdict(r.counts)
        c.pop("_next_seq")
        out.append(c)
        await r.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tokens", required=True, help="file with one token per line")
    parser.add_argument("--window", nargs=2, type=float, required=True, metavar=("START", "END"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.tokens) as f:
        tokens = [line.strip() for line in f if line.strip()]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args.url, tokens, tuple(args.window)))  # type: ignore[arg-type]
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
