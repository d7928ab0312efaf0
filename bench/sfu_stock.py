"""The baseline: aiortc's stock RTCRtpSender per receiver, fed the same pre-encoded packets.

Speaks the part of docs/protocol.md the benchmark receivers use (welcome, media:offer), so both
designs are driven by the same clients. Each receiver's sender packetizes, numbers, protects and
sends on its own, as aiortc does.

    python -m bench.sfu_stock --port P --window START END --stats FILE
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp import web
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench.clip import encode_clip
from bench.cliptrack import ClipSource
from bench.probe import measure_until_sigterm, sfu_main
from bridge.media.aiortc_adapter import restrict_host_addresses

LINES = [{"kind": "audio", "send": False, "slot": "program-audio"},
         {"kind": "video", "send": False, "slot": "program-video"}]


async def serve(port: int, window: tuple[float, float], stats_path: str) -> None:
    restrict_host_addresses(["127.0.0.1"])
    source = ClipSource(encode_clip())
    pcs: set[RTCPeerConnection] = set()
    sio = socketio.AsyncServer(async_mode="aiohttp", max_http_buffer_size=1 << 20)
    app = web.Application()
    sio.attach(app)
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))

    @sio.event
    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        await sio.emit("welcome", {"media": {"lines": LINES}}, to=sid)

    @sio.on("media:offer")
    async def offer(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        pcs.add(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=payload["sdp"], type="offer"))
        for t in pc.getTransceivers():
            t.direction = "sendonly"
            t.sender.replaceTrack(source.track(t.kind))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"ok": True, "answer": {"type": "answer", "sdp": pc.localDescription.sdp}}

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    source.start()
    await measure_until_sigterm(window, stats_path)
    await source.stop()
    for pc in pcs:
        await pc.close()
    await runner.cleanup()


if __name__ == "__main__":
    sfu_main(serve)
