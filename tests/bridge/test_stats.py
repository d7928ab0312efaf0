from __future__ import annotations

from bridge.media.stats import StreamStats


def test_loss_fraction_and_wrap() -> None:
    s = StreamStats(ssrc=5, clock_rate=90000)
    seqs = [65530 + i for i in range(6)] + [0, 1, 3, 4]  # 2 lost, across the wrap
    for n, seq in enumerate(seqs):
        s.add(seq % 65536, n * 3000, 1000, n / 30)
    assert s.expected == 11 and s.received == 10 and s.lost == 1
    block = s.report(1.0)
    assert block.highest_sequence == 65536 + 4
    assert block.fraction_lost == (1 << 8) // 11
    assert s.report(2.0).fraction_lost == 0, "a new interval starts after each report"


def test_jitter_grows_with_irregular_arrival() -> None:
    steady, shaky = StreamStats(1, 90000), StreamStats(2, 90000)
    for n in range(100):
        steady.add(n, n * 3000, 1000, n / 30)
        shaky.add(n, n * 3000, 1000, n / 30 + (0.02 if n % 2 else 0.0))
    assert steady.jitter_ms() < 0.1 < shaky.jitter_ms()


def test_lsr_and_dlsr_from_the_last_sender_report() -> None:
    s = StreamStats(1, 48000)
    s.add(1, 0, 100, 0.0)
    s.sender_report(0xAAAABBBBCCCCDDDD, 10.0)
    block = s.report(10.5)
    assert block.lsr == 0xBBBBCCCC
    assert block.dlsr == 32768


def test_recent_loss_forgets_an_outage_that_the_whole_stream_remembers() -> None:
    s = StreamStats(1, 90000)
    for n in range(30):
        s.add(n, n * 3000, 1000, n / 30)
    for n in range(330, 360):  # 10 s of nothing, then packets again
        s.add(n, n * 3000, 1000, n / 30)
    s.report(12.0)
    assert s.recent_loss > 0.8 and s.loss_ratio() > 0.8
    for n in range(360, 390):
        s.add(n, n * 3000, 1000, n / 30)
    s.report(13.0)
    assert s.recent_loss == 0.0, "the network is fine again"
    assert s.loss_ratio() > 0.7, "the stream's total still counts the outage"


def test_console_health_verdicts() -> None:
    """What a console tile says of a site's network (signaling.service.health_verdict)."""
    from bridge.conference import Presence
    from signaling.service import health_verdict

    clean = {"silent_s": 0.1, "loss_in": 0.0, "loss_out": 0.001, "jitter_ms": 4.0, "rtt_ms": 20.0}
    assert health_verdict(Presence.LIVE, clean) == "good"
    assert health_verdict(Presence.LIVE, {**clean, "rtt_ms": None, "jitter_ms": None}) == "good"
    for name, bad in (("loss_in", 0.05), ("loss_out", 0.04), ("jitter_ms", 31.0), ("rtt_ms", 301.0)):
        assert health_verdict(Presence.LIVE, {**clean, name: bad}) == "poor", name
    assert health_verdict(Presence.LIVE, {**clean, "silent_s": 60.0}) == "lost"
    assert health_verdict(Presence.LOST, clean) == "lost"
    assert health_verdict(Presence.CONNECTING, {**clean, "silent_s": None}) == "good"
