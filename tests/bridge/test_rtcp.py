from __future__ import annotations

from bridge.media import rtcp
from bridge.media.rtcp import Nack, Pli, ReceiverReport, ReportBlock, SenderReport


def test_round_trips() -> None:
    sr = SenderReport(1, 0x0123456789ABCDEF, 90000, 10, 1000)
    block = ReportBlock(2, 25, -3, 70000, 12, 0x1234, 0x5678)
    compound = (rtcp.sender_report(sr, (block,)) + rtcp.receiver_report(3, (block,))
                + rtcp.pli(3, 9) + rtcp.nack(3, 9, [100, 101, 103, 130]))
    records = rtcp.parse(compound)
    assert records[0] == sr
    assert records[1] == ReceiverReport(1, (block,))
    assert records[2] == ReceiverReport(3, (block,))
    assert records[3] == Pli(9)
    assert records[4] == Nack(9, (100, 101, 103, 130))


def test_nack_wraps_and_remb() -> None:
    (record,) = rtcp.parse(rtcp.nack(1, 2, [65535, 0, 2]))
    assert isinstance(record, Nack) and set(record.lost) == {65535, 0, 2}
    packet = rtcp.remb(1, 1_500_000, [7])
    assert rtcp.remb_bitrate(packet) is not None
    assert abs(rtcp.remb_bitrate(packet) - 1_500_000) < 1_500_000 * 0.001  # type: ignore[operator]


def test_fir_counts_as_a_keyframe_request() -> None:
    fir = bytes([0x84, 206, 0, 4]) + (1).to_bytes(4, "big") + bytes(4) + (77).to_bytes(4, "big") + bytes(4)
    assert rtcp.parse(fir) == [Pli(77)]


def test_garbage_is_skipped_not_raised() -> None:
    assert rtcp.parse(b"") == []
    assert rtcp.parse(b"\x80\xc9\x00\x09" + b"\x00" * 4) == []  # length beyond the data
    assert rtcp.parse(b"\x40\xc8\x00\x00") == []  # version 1
    assert rtcp.is_rtcp(rtcp.pli(1, 2)) and not rtcp.is_rtcp(b"\x80\x60\x00\x01")
