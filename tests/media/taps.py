"""Test-side taps on a simulated participant's aiortc receivers: what arrived on the wire."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiortc.rtp import RtcpSrPacket

from bench.sim.simulate import SimulatedParticipant
from bridge.media.rtp import vp8_is_keyframe_start


@dataclass
class Tap:
    """RTP and sender reports that reached one slot of a participant."""

    payload_types: list[int] = field(default_factory=list)
    keyframes: int = 0
    packets: int = 0
    last: tuple[int, float] | None = None  # (RTP timestamp, arrival monotonic s)
    sender_report: tuple[int, int] | None = None  # (NTP, RTP timestamp)
    sequences: list[int] = field(default_factory=list)


def tap(p: SimulatedParticipant, slot: str) -> Tap:
    assert p.pc is not None and p.welcome is not None
    slots = [line["slot"] for line in p.welcome["media"]["lines"]]
    receiver = p.pc.getTransceivers()[slots.index(slot)].receiver
    seen = Tap()
    rtp_in, rtcp_in = receiver._handle_rtp_packet, receiver._handle_rtcp_packet

    async def on_rtp(packet: Any, arrival_time_ms: int) -> None:
        seen.packets += 1
        seen.payload_types.append(packet.payload_type)
        seen.sequences.append(packet.sequence_number)
        seen.last = (packet.timestamp, time.monotonic())
        if vp8_is_keyframe_start(packet.payload):
            seen.keyframes += 1
        await rtp_in(packet, arrival_time_ms=arrival_time_ms)

    async def on_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            seen.sender_report = (packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
        await rtcp_in(packet)

    receiver._handle_rtp_packet = on_rtp
    receiver._handle_rtcp_packet = on_rtcp
    return seen


def receiver_of(p: SimulatedParticipant, slot: str) -> Any:
    assert p.pc is not None and p.welcome is not None
    slots = [line["slot"] for line in p.welcome["media"]["lines"]]
    return p.pc.getTransceivers()[slots.index(slot)].receiver
