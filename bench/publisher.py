"""The program source for the hallbridge design: an aiortc client joining as the main hall and
sending the pre-encoded clip through aiortc's stock sender (packetized once, not per site): the
high layer 1280x720 ~1.5 Mbit/s and, with `--layers 2`, the low layer from its own clip (640x360
~300 kbit/s); with `--layers 1` the low line is offered inactive (a client that cannot send it).
With `--content` the hall also presents (present:start): a 1920x1080 clip at 30 fps, ~1.2
Mbit/s, on the content line — slides with a video in them, the heaviest content there is for a
forwarder (a still slide sends a fraction of those packets); without it the content line is
offered inactive.

    python -m bench.publisher --url URL --token TOKEN [--layers 1|2] [--content]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import socketio
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench.clip import encode_clip
from bench.cliptrack import ClipSource
from bridge.media.aiortc_adapter import restrict_host_addresses

CONTENT_SIZE, CONTENT_BITRATE = (1920, 1080), 1_200_000


async def publish(url: str, token: str, layers: int = 2, content: bool = False) -> None:
    restrict_host_addresses(["127.0.0.1"])
    source = ClipSource(encode_clip())
    low = ClipSource(encode_clip(640, 360, bitrate=300_000)) if layers == 2 else None
    slides = ClipSource(encode_clip(*CONTENT_SIZE, bitrate=CONTENT_BITRATE)) if content else None
    sio = socketio.AsyncClient(reconnection=False)
    welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    sio.on("welcome", lambda data: welcome.done() or welcome.set_result(data))
    await sio.connect(url, auth={"token": token}, transports=["websocket"])
    lines = (await asyncio.wait_for(welcome, 20))["media"]["lines"]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    for line in lines:
        own = slides if line["slot"] == "content" else low if line.get("layer") == "low" else source
        if line["send"] and own is not None:
            t = pc.addTransceiver(line["kind"], direction="sendonly")
            t.sender.replaceTrack(own.track(line["kind"]))
            own.answer_pli(t.sender)
        else:
            pc.addTransceiver(line["kind"], direction="inactive")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await sio.call("media:offer", {"type": "offer", "sdp": pc.localDescription.sdp}, timeout=30)
    await pc.setRemoteDescription(RTCSessionDescription(**reply["answer"]))
    for s in (source, low, slides):
        if s is not None:
            s.start()
    if slides is not None:
        started = await sio.call("present:start", {"source": "camera"}, timeout=30)
        if not started.get("ok"):
            raise RuntimeError(f"present:start: {started}")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for s in (source, low, slides):
        if s is not None:
            await s.stop()
    await pc.close()
    await sio.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--layers", type=int, choices=(1, 2), default=2)
    parser.add_argument("--content", action="store_true", help="present a content clip as well")
    args = parser.parse_args()
    import uvloop

    uvloop.install()
    asyncio.run(publish(args.url, args.token, args.layers, args.content))


if __name__ == "__main__":
    main()
