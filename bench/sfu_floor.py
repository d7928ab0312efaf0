"""The physical floor of forwarding in Python: the least work that gets the program to every site.

Negotiates with the same receivers as the other designs (aiortc peer connections: ICE, DTLS,
the SRTP keys), then — no asyncio, no routing, no feedback — one plain thread paces the clip
(packetized once, before the window) and, per packet and per site, patches the RTP header
(SSRC, sequence number, timestamp, payload type), SRTP-protects it with pylibsrtp and writes
each site's packets of a frame as GSO runs: the same protect and write primitives hallbridge's
outbox uses. What hallbridge costs above this is what its design costs.

    python -m bench.sfu_floor --port P --window START END --stats FILE
"""

from __future__ import annotations

import asyncio
import fractions
import struct
import threading
import time
from dataclasses import dataclass

import av
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from bench.clip import FPS, encode_clip
from bench.probe import measure_until_sigterm, sfu_main, start_offer_server
from bridge.media.aiortc_adapter import HoldTrack, Sink, fast_protect, restrict_host_addresses
from bridge.media.aiortc_adapter import _quiet_rtcp_loop as quiet_rtcp_loop

HEADER = struct.Struct("!BBHII")


@dataclass
class Receiver:
    pc: RTCPeerConnection
    ssrc: dict[str, int]
    pt: dict[str, int]
    sink: Sink | None = None
    seq: int = 0  # video
    aseq: int = 0  # audio


def packetize() -> tuple[list[list[tuple[bytes, bool]]], list[bytes], int]:
    """The clip as RTP payloads: per video frame its packets (payload, marker); audio payloads;
    the video frame count."""
    clip = encode_clip()
    vp8, opus = Vp8Encoder(), OpusEncoder()
    frames = []
    for n, (data, key) in enumerate(clip.video):
        packet = av.Packet(data)
        packet.pts, packet.time_base = n, fractions.Fraction(1, FPS)
        packet.is_keyframe = key
        payloads, _ = vp8.pack(packet)
        frames.append([(p, i == len(payloads) - 1) for i, p in enumerate(payloads)])
    audio = []
    for n, data in enumerate(clip.audio):
        packet = av.Packet(data)
        packet.pts, packet.time_base = n * 960, fractions.Fraction(1, 48000)
        audio.append(opus.pack(packet)[0][0])
    return frames, audio, len(frames)


def floor_loop(receivers: list[Receiver], frames: list[list[tuple[bytes, bool]]],
               audio: list[bytes], window: tuple[float, float], counts: dict[str, int]) -> None:
    """The bare loop: real time, the clip to every receiver, until the window ends."""
    sinks = [r for r in receivers if r.sink is not None]
    start = time.monotonic()
    end = start + (window[1] - time.time())
    vi = ai = 0
    while True:
        now = time.monotonic()
        if now >= end:
            return
        while vi / FPS <= now - start:
            frame, ts = frames[vi % len(frames)], vi * 3000
            for r in sinks:
                out = []
                for payload, marker in frame:
                    out.append(r.sink.protect(HEADER.pack(  # type: ignore[union-attr]
                        0x80, r.pt["video"] | (0x80 if marker else 0), r.seq & 0xFFFF, ts & 0xFFFFFFFF,
                        r.ssrc["video"]) + payload))
                    r.seq += 1
                counts["dropped"] += r.sink.write(out)  # type: ignore[union-attr]
                counts["sent"] += len(out)
            vi += 1
        while ai * 0.02 <= now - start:
            payload, ts = audio[ai % len(audio)], ai * 960
            for r in sinks:
                packet = r.sink.protect(HEADER.pack(  # type: ignore[union-attr]
                    0x80, r.pt["audio"], r.aseq & 0xFFFF, ts & 0xFFFFFFFF,
                    r.ssrc["audio"]) + payload)
                r.aseq += 1
                counts["dropped"] += r.sink.write([packet])  # type: ignore[union-attr]
                counts["sent"] += 1
            ai += 1
        time.sleep(max(0.0, min(vi / FPS, ai * 0.02) - (time.monotonic() - start)))


async def serve(port: int, window: tuple[float, float], stats_path: str) -> None:
    restrict_host_addresses(["127.0.0.1"])
    frames, audio, _ = packetize()
    receivers: list[Receiver] = []

    async def answer(sdp: str) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for t in pc.getTransceivers():
            t.direction = "sendonly"
            t.sender.replaceTrack(HoldTrack(t.kind))  # the stock sender stays idle
            t.sender._run_rtcp = quiet_rtcp_loop(t.sender)  # and never shares the SRTP session
        await pc.setLocalDescription(await pc.createAnswer())
        receiver = Receiver(pc, {}, {})
        for t in pc.getTransceivers():
            receiver.ssrc[t.kind] = t.sender._ssrc
            receiver.pt[t.kind] = next(c.payloadType for c in t._codecs
                                       if c.mimeType in ("audio/opus", "video/VP8"))
        receivers.append(receiver)
        return str(pc.localDescription.sdp)

    runner = await start_offer_server(port, answer)
    counts = {"sent": 0, "dropped": 0}
    thread: threading.Thread | None = None

    async def start_at_window() -> None:
        nonlocal thread
        await asyncio.sleep(max(0.0, window[0] - time.time()))
        for r in receivers:  # connected by now (the window opens after the joins)
            dtls = r.pc.getTransceivers()[0].sender.transport
            pair = dtls.transport._connection._nominated.get(1)
            if getattr(dtls, "_tx_srtp", None) is not None and pair is not None:
                r.sink = Sink(fast_protect(dtls._tx_srtp), pair.protocol.transport,
                              pair.remote_addr, None)  # type: ignore[arg-type]
        thread = threading.Thread(target=floor_loop, args=(receivers, frames, audio, window, counts),
                                  name="floor", daemon=True)
        thread.start()

    starter = asyncio.create_task(start_at_window())
    await measure_until_sigterm(window, stats_path, lambda: {"floor": dict(counts),
                                                             "sinks": sum(1 for r in receivers if r.sink)})
    starter.cancel()
    if thread is not None:
        thread.join(timeout=5)
    for r in receivers:
        if r.sink is not None:
            r.sink.close()
        await r.pc.close()
    await runner.cleanup()


if __name__ == "__main__":
    sfu_main(serve)
