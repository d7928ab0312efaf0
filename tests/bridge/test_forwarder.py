from __future__ import annotations

from itertools import pairwise

from bridge.media.forwarder import History, OutStream, Route, Throttle, seq_newer


def test_numbers_are_continuous_across_switches_and_wrap() -> None:
    out = OutStream(ssrc=1, payload_type=96, clock_rate=90000, first_sequence=65534,
                    first_timestamp=2**32 - 3000)
    seqs, stamps = [], []
    t = 0.0
    sources = [("hall", 100, 5000), ("a", 40000, 9_000_000), ("b", 65530, 2**32 - 100)]
    for n in range(12):  # twelve switches
        name, seq0, ts0 = sources[n % 3]
        for i in range(5):
            s, ts = out.rewrite(name, 7, (seq0 + n * 10 + i) % 65536, (ts0 + 3000 * i) % 2**32, t)
            seqs.append(s)
            stamps.append(ts)
            t += 1 / 30
    for a, b in pairwise(seqs):
        assert (b - a) % 65536 == 1, "sequence numbers step by one across every switch"
    for a, b in pairwise(stamps):
        assert 0 < (b - a) % 2**32 <= 3000 + 1, "timestamps only move forward, by about the gap"
    assert seqs[0] == 65534 and seqs[2] == 0, "wraps at 2^16"


def test_reordered_packet_of_the_same_source_keeps_its_place() -> None:
    out = OutStream(ssrc=1, payload_type=96, clock_rate=90000)
    first, _ = out.rewrite("hall", 7, 10, 0, 0.0)
    third, _ = out.rewrite("hall", 7, 12, 0, 0.0)
    second, _ = out.rewrite("hall", 7, 11, 0, 0.0)
    assert (first, second, third) == (0, 1, 2)


def test_a_paused_slot_resumes_where_it_stopped() -> None:
    """The same source back after a pause (floor revoked then granted, unmuted): the numbers
    go on from the last one sent, the clock by the time it was away; the source's own numbers
    moved on meanwhile and must not show through."""
    out = OutStream(ssrc=1, payload_type=96, clock_rate=90000, first_sequence=100)
    sent = [out.rewrite("a", 7, 5000 + i, 3000 * i, i / 30) for i in range(3)]
    out.pause()
    resumed = out.rewrite("a", 7, 5000 + 47, 3000 * 47, 47 / 30)
    assert [s for s, _ in sent] + [resumed[0]] == [100, 101, 102, 103]
    assert abs((resumed[1] - sent[-1][1]) - 3000 * 45) <= 1, "the clock advanced by the pause"


def test_a_source_restarting_its_stream_is_rebased() -> None:
    """A rejoin with a new peer connection: same participant, new SSRC and numbers."""
    out = OutStream(ssrc=1, payload_type=96, clock_rate=48000, first_sequence=10)
    out.rewrite("a", 7, 30000, 0, 0.0)
    again, _ = out.rewrite("a", 8, 123, 0, 0.02)
    assert again == 11


def test_video_switch_waits_for_a_keyframe_of_the_new_source() -> None:
    route = Route(needs_keyframe=True)
    assert route.want("hall"), "first source: ask it for a keyframe"
    assert not route.admit("hall", False), "nothing before the first keyframe"
    assert route.admit("hall", True) and route.current == "hall"
    assert route.want("a"), "a switch asks the new source for a keyframe at once"
    assert route.admit("hall", False), "the old source keeps flowing until the keyframe"
    assert not route.admit("a", False), "no delta frames of the new source before its keyframe"
    assert route.admit("a", True)
    assert route.current == "a" and route.pending is None
    assert not route.admit("hall", True), "the old source stops at the switch"


def test_audio_switches_at_once() -> None:
    route = Route(needs_keyframe=False)
    assert not route.want("hall")
    assert route.admit("hall", False)
    assert not route.want("a")
    assert route.admit("a", False) and not route.admit("hall", False)


def test_switch_back_before_the_keyframe_cancels_it() -> None:
    route = Route(needs_keyframe=True)
    route.want("hall")
    route.admit("hall", True)
    route.want("a")
    assert not route.want("hall"), "already flowing: no keyframe needed"
    assert route.pending is None and route.admit("hall", False) and not route.admit("a", True)


def test_no_source() -> None:
    route = Route(needs_keyframe=True)
    route.want("hall")
    route.admit("hall", True)
    assert not route.want(None)
    assert route.current is None and not route.admit("hall", True)


def test_source_leaving() -> None:
    route = Route(needs_keyframe=True)
    route.want("hall")
    route.admit("hall", True)
    route.want("a")
    route.source_gone("hall")
    assert route.current is None and route.pending == "a"
    assert route.admit("a", True)


def test_history_serves_recent_packets_only() -> None:
    history: History[str] = History(4)
    for seq in range(65533, 65536):
        history.put(seq, f"p{seq}")
    history.put(0, "p0")
    history.put(1, "p1")  # overwrites 65533's cell
    assert history.get(65533) is None
    assert history.get(65535) == "p65535" and history.get(0) == "p0" and history.get(1) == "p1"
    assert history.get(5) is None


def test_throttle() -> None:
    th = Throttle(0.5)
    assert th.allow(0.0) and not th.allow(0.4) and th.allow(0.5)


def test_seq_newer_wraps() -> None:
    assert seq_newer(0, 65535) and not seq_newer(65535, 0) and not seq_newer(5, 5)
