"""The content slot in the router (issue 18), fake endpoints and a fake clock: the presenter's
slides go to everyone else beside the program; a late joiner and a new presenter each get a
keyframe asked for; a change of presenter is seamless on the slot; no presenter, no content."""

from __future__ import annotations

import struct
from itertools import pairwise

from bridge.media.policy import CONTENT, PROGRAM_VIDEO, Scene
from bridge.media.router import MediaRouter
from tests.bridge.test_router import Layout
from tests.bridge.test_router_layers import Endpoint

SSRC = {"video": 5, "content": 8}


class Presenter(Endpoint):
    def remote_ssrc(self, stream: str) -> int | None:
        return SSRC.get(stream)


def packet(stream: str, seq: int, key: bool, base: int) -> bytes:
    header = struct.pack("!BBHII", 0x80, 0x80 | 96, (base + seq) & 0xFFFF, (base + seq * 9000) & 0xFFFFFFFF,
                         SSRC[stream] + base)
    return header + bytes([0x10]) + (b"\x50\x00\x00\x9d\x01\x2a" if key else b"\x01\x00\x00")


class Room:
    def __init__(self) -> None:
        self.now = 0.0
        self.router = MediaRouter(Scene("hall", "hall"), clock=lambda: self.now)
        self.a, self.b = Presenter("a"), Presenter("b")  # two sites that may present
        for pub in (self.a, self.b):
            self.router.add_publisher(pub)
        self.sites: dict[str, Endpoint] = {}
        for n in range(2):
            self.join(f"s{n}", 300 + n)

    def join(self, name: str, ssrc: int) -> Endpoint:
        site = self.sites[name] = Endpoint(name)
        self.router.add_receiver(site, [(PROGRAM_VIDEO, Layout(ssrc=ssrc - 200)),
                                        (CONTENT, Layout(ssrc=ssrc))])
        return site

    def present(self, who: str | None) -> None:
        self.router.set_scene(Scene("hall", "hall", presenter=who))

    def slides(self, who: Presenter, count: int, key_at: set[int], base: int) -> None:
        for n in range(count):
            data = packet("content", n, n in key_at, base)
            self.router._forward_packet(who.participant_id, "content", data)
            self.now += 0.2  # 5 fps: slides


def content_pli(pub: Endpoint) -> int:
    return pub.plis().count(SSRC["content"])


def test_the_presenter_s_slides_reach_everyone_else_and_a_late_joiner_asks_a_keyframe() -> None:
    room = Room()
    room.slides(room.a, 3, {0}, 1000)
    assert all(s.video(300 + n) == [] for n, s in enumerate(room.sites.values())), "no presenter"
    room.present("a")
    assert content_pli(room.a) == 1, "the new presenter is asked for a keyframe at once"
    room.slides(room.a, 5, {0}, 2000)
    assert [len(s.video(300 + n)) for n, s in enumerate(room.sites.values())] == [5, 5]
    assert room.a.video(300) == [], "the presenter is not sent its own slides"
    room.now += 1.0  # past the keyframe throttle
    late = room.join("s9", 309)
    assert content_pli(room.a) == 2, "a late joiner's slot asks for the current slide"
    room.slides(room.a, 2, set(), 2005)
    assert late.video(309) == [], "nothing before the keyframe (a broken picture)"
    room.slides(room.a, 2, {0}, 2007)
    assert len(late.video(309)) == 2


def test_a_change_of_presenter_is_seamless_and_no_presenter_stops_the_content() -> None:
    room = Room()
    room.present("a")
    room.slides(room.a, 4, {0}, 1000)
    room.present("b")
    assert content_pli(room.b) == 1
    room.slides(room.a, 2, set(), 1004)  # a goes on until b's keyframe arrives
    room.slides(room.b, 3, {0}, 5000)
    got = room.sites["s0"].video(300)
    assert len(got) == 9
    seqs = [struct.unpack_from("!H", p, 2)[0] for p in got]
    assert all((y - x) % 65536 == 1 for x, y in pairwise(seqs)), "one stream, numbering by one"
    assert len({struct.unpack_from("!I", p, 8)[0] for p in got}) == 1, "the slot's own SSRC"
    room.present(None)
    room.slides(room.b, 3, {0}, 5003)
    assert len(room.sites["s0"].video(300)) == 9, "the presentation ended: nothing more"
    assert room.router._remb_for("b") < MediaRouter(Scene("hall", "hall", presenter="b"))._remb_for("b")
