"""The baseline: aiortc's stock RTCRtpSender per receiver, fed the same pre-encoded packets.

Speaks the part of docs/protocol.md the benchmark receivers use (welcome, media:offer), so both
designs are driven by the same clients. Each receiver's sender packetizes, numbers, protects and
sends on its own, as aiortc does.

    python -m bench.sfu_stock --port P --window START END --stats FILE
"""

from __future__ import annotations

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench.clip import encode_clip
from bench.cliptrack import ClipSource
from bench.probe import measure_until_sigterm, sfu_main, start_offer_server
from bridge.media.aiortc_adapter import restrict_host_addresses


async def serve(port: int, window: tuple[float, float], stats_path: str) -> None:
    restrict_host_addresses(["127.0.0.1"])
    source = ClipSource(encode_clip())
    pcs: set[RTCPeerConnection] = set()

    async def answer(sdp: str) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        pcs.add(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for t in pc.getTransceivers():
            t.direction = "sendonly"
            t.sender.replaceTrack(source.track(t.kind))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    runner = await start_offer_server(port, answer)
    source.start()
    await measure_until_sigterm(window, stats_path)
    await source.stop()
    for pc in pcs:
        await pc.close()
    await runner.cleanup()


if __name__ == "__main__":
    sfu_main(serve)
