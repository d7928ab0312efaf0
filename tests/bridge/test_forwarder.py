from __future__ import annotations

from itertools import pairwise

from bridge.media.forwarder import OutStream, ProgramGate, Throttle, seq_newer


def test_numbers_are_continuous_across_switches_and_wrap() -> None:
    out = OutStream(ssrc=1, payload_type=96, clock_rate=90000, first_sequence=65534,
                    first_timestamp=2**32 - 3000)
    seqs, stamps = [], []
    t = 0.0
    sources = [("hall", 100, 5000), ("a", 40000, 9_000_000), ("b", 65530, 2**32 - 100)]
    for n in range(12):  # twelve switches
        name, seq0, ts0 = sources[n % 3]
        for i in range(5):
            s, ts = out.rewrite(name, (seq0 + n * 10 + i) % 65536, (ts0 + 3000 * i) % 2**32, t)
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
    first, _ = out.rewrite("hall", 10, 0, 0.0)
    third, _ = out.rewrite("hall", 12, 0, 0.0)
    second, _ = out.rewrite("hall", 11, 0, 0.0)
    assert (first, second, third) == (0, 1, 2)


def test_switch_waits_for_a_keyframe_of_the_new_source() -> None:
    gate = ProgramGate(needs_keyframe=True, keyframe_interval_s=0.5)
    assert gate.set_program("hall", 0.0) == "hall"  # first source: ask for a keyframe
    assert gate.admit("hall", False)
    assert gate.set_program("a", 1.0) == "a"  # PLI to the new source at once
    assert gate.admit("hall", False), "the old source keeps flowing until the keyframe"
    assert not gate.admit("a", False), "no delta frames of the new source before its keyframe"
    assert gate.keyframe_due(1.2) is None, "throttled"
    assert gate.keyframe_due(1.6) == "a", "asked again after the interval"
    assert gate.admit("a", True)
    assert gate.current == "a" and gate.pending is None
    assert not gate.admit("hall", True), "the old source stops at the switch"
    assert gate.keyframe_due(5.0) is None


def test_audio_switches_at_once() -> None:
    gate = ProgramGate(needs_keyframe=False, keyframe_interval_s=0.5)
    gate.set_program("hall", 0.0)
    assert gate.set_program("a", 1.0) is None
    assert gate.admit("a", False) and not gate.admit("hall", False)


def test_switch_back_before_the_keyframe_cancels_it() -> None:
    gate = ProgramGate(needs_keyframe=True, keyframe_interval_s=0.5)
    gate.set_program("hall", 0.0)
    gate.set_program("a", 1.0)
    gate.set_program("hall", 1.1)
    assert gate.pending is None and gate.admit("hall", False) and not gate.admit("a", True)


def test_source_leaving() -> None:
    gate = ProgramGate(needs_keyframe=True, keyframe_interval_s=0.5)
    gate.set_program("hall", 0.0)
    gate.set_program("a", 1.0)
    gate.source_gone("hall")
    assert gate.current == "a"
    gate.source_gone("a")
    assert gate.current is None and not gate.admit("a", True)


def test_throttle() -> None:
    th = Throttle(0.5)
    assert th.allow(0.0) and not th.allow(0.4) and th.allow(0.5)


def test_seq_newer_wraps() -> None:
    assert seq_newer(0, 65535) and not seq_newer(65535, 0) and not seq_newer(5, 5)
