"""The router with fake endpoints (pure bookkeeping; the real ones are in tests/media)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from bridge.media.policy import PROGRAM_VIDEO, Scene
from bridge.media.router import MediaRouter


@dataclass(frozen=True)
class Layout:
    kind: str = "video"
    ssrc: int = 1
    payload_type: int = 96
    clock_rate: int = 90000
    extension_ids: dict[str, int] = field(default_factory=dict)
    rtx_payload_type: int | None = None
    rtx_ssrc: int | None = None


class Fake:
    def __init__(self, pid: str) -> None:
        self.participant_id = pid
        self.sent: list[bytes] = []

    def inbound_extension_ids(self, kind: str) -> dict[str, int]:
        return {}

    def send_rtp(self, packet: bytes) -> bool:
        self.sent.append(packet)
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        return True

    def remote_ssrc(self, kind: str) -> int | None:
        return 5


def keyframe(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0x80 | 96, seq, seq * 3000, 5) + b"\x10\x50\x00\x00\x9d\x01\x2a"


def test_a_source_leaving_while_slots_wait_on_it_and_receive_it() -> None:
    router = MediaRouter(Scene("hall", "a"), clock=lambda: 0.0)
    a, b, c = Fake("a"), Fake("b"), Fake("c")
    router.add_publisher(a)
    for n, sink in enumerate((b, c)):
        router.add_receiver(sink, [(PROGRAM_VIDEO, Layout(ssrc=100 + n))])
    router._forward_packet("a", "video", keyframe(1))
    assert len(b.sent) == 1 and len(c.sent) == 1
    router.set_scene(Scene("hall", "b"))  # c now waits on b; b sees the hall
    router.remove("a")  # the old source leaves: nothing may break while indexes change
    router.remove("b")
    assert router.slots_of("b") == []
    router._forward_packet("a", "video", keyframe(2))
    assert len(c.sent) == 1, "a left: nothing more from it"
