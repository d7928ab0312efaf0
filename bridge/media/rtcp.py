"""Pure RTCP: read the feedback a bridge acts on, write the reports a bridge owes.

RFC 3550 (SR, RR), RFC 4585 (generic NACK, PLI), RFC 5104 (FIR), draft-alvestrand-rmcat-remb
(REMB). Bytes in, records out; records in, bytes out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR, RR, SDES, BYE, RTPFB, PSFB = 200, 201, 202, 203, 205, 206
FMT_NACK, FMT_PLI, FMT_FIR, FMT_AFB = 1, 1, 4, 15
_REMB = b"REMB"


@dataclass(frozen=True, slots=True)
class Pli:
    media_ssrc: int


@dataclass(frozen=True, slots=True)
class Nack:
    media_ssrc: int
    lost: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp: int  # 64-bit NTP timestamp
    rtp_timestamp: int
    packets: int
    octets: int


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    blocks: tuple[ReportBlock, ...]


@dataclass(frozen=True, slots=True)
class Remb:
    """A receiver's bandwidth estimate for the streams it names (draft-alvestrand-rmcat-remb)."""

    bitrate_bps: int
    ssrcs: tuple[int, ...]


Feedback = Pli | Nack | SenderReport | ReceiverReport | Remb


def is_rtcp(data: bytes) -> bool:
    """RTP and RTCP share one port (RFC 5761): RTCP packet types are 192..223."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse(data: bytes) -> list[Feedback]:
    """The records of a compound RTCP packet that the bridge uses; others are skipped."""
    out: list[Feedback] = []
    i = 0
    while i + 4 <= len(data):
        first, packet_type, words = data[i], data[i + 1], struct.unpack_from("!H", data, i + 2)[0]
        end = i + 4 + 4 * words
        if first >> 6 != 2 or end > len(data):
            break
        body = data[i + 4 : end]
        count = first & 0x1F
        if packet_type in (SR, RR):
            out.extend(_reports(packet_type, count, body))
        elif packet_type == PSFB and len(body) >= 8:
            out.extend(_psfb(count, body))
        elif packet_type == RTPFB and count == FMT_NACK and len(body) >= 8:
            out.append(_nack(body))
        i = end
    return out


def _reports(packet_type: int, count: int, body: bytes) -> list[Feedback]:
    if len(body) < 4:
        return []
    ssrc = struct.unpack_from("!I", body)[0]
    out: list[Feedback] = []
    offset = 4
    if packet_type == SR:
        if len(body) < 24:
            return []
        ntp, rtp_ts, packets, octets = struct.unpack_from("!QIII", body, 4)
        out.append(SenderReport(ssrc, ntp, rtp_ts, packets, octets))
        offset = 24
    blocks = []
    for n in range(count):
        at = offset + 24 * n
        if at + 24 > len(body):
            break
        src, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", body, at)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:  # signed 24 bits
            lost -= 1 << 24
        blocks.append(ReportBlock(src, lost_word >> 24, lost, highest, jitter, lsr, dlsr))
    if blocks or packet_type == RR:
        out.append(ReceiverReport(ssrc, tuple(blocks)))
    return out


def _psfb(fmt: int, body: bytes) -> list[Feedback]:
    media_ssrc = struct.unpack_from("!I", body, 4)[0]
    if fmt == FMT_PLI:
        return [Pli(media_ssrc)]
    if fmt == FMT_FIR:  # FCI entries: SSRC, seq nr, reserved
        return [Pli(struct.unpack_from("!I", body, at)[0]) for at in range(8, len(body) - 7, 8)]
    if fmt == FMT_AFB and len(body) >= 16 and body[8:12] == _REMB:
        count = body[12]
        word = int.from_bytes(body[13:16], "big")
        ssrcs = tuple(struct.unpack_from("!I", body, 16 + 4 * n)[0] for n in range(count)
                      if 20 + 4 * n <= len(body))
        return [Remb((word & 0x3FFFF) << (word >> 18), ssrcs)]
    return []


def _nack(body: bytes) -> Nack:
    media_ssrc = struct.unpack_from("!I", body, 4)[0]
    lost: list[int] = []
    for at in range(8, len(body) - 3, 4):
        pid, blp = struct.unpack_from("!HH", body, at)
        lost.append(pid)
        lost.extend((pid + bit + 1) & 0xFFFF for bit in range(16) if blp >> bit & 1)
    return Nack(media_ssrc, tuple(lost))


def _header(fmt_or_count: int, packet_type: int, body_len: int) -> bytes:
    return struct.pack("!BBH", 0x80 | fmt_or_count, packet_type, body_len // 4)


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return _header(FMT_PLI, PSFB, 8) + struct.pack("!II", sender_ssrc, media_ssrc)


def nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    fci = b""
    pending = sorted(set(lost))
    while pending:
        pid = pending.pop(0)
        blp = 0
        for seq in list(pending):
            diff = (seq - pid) & 0xFFFF
            if 1 <= diff <= 16:
                blp |= 1 << (diff - 1)
                pending.remove(seq)
        fci += struct.pack("!HH", pid, blp)
    body = struct.pack("!II", sender_ssrc, media_ssrc) + fci
    return _header(FMT_NACK, RTPFB, len(body)) + body


def remb(sender_ssrc: int, bitrate_bps: int, media_ssrcs: list[int]) -> bytes:
    exponent, mantissa = 0, int(bitrate_bps)
    while mantissa > 0x3FFFF:  # 18-bit mantissa
        mantissa >>= 1
        exponent += 1
    fci = _REMB + struct.pack("!B", len(media_ssrcs)) + struct.pack(
        "!I", (exponent << 18 | mantissa))[1:] + b"".join(struct.pack("!I", s) for s in media_ssrcs)
    body = struct.pack("!II", sender_ssrc, 0) + fci
    return _header(FMT_AFB, PSFB, len(body)) + body


def remb_bitrate(data: bytes) -> int | None:
    """The bitrate of a REMB message (tests and diagnostics)."""
    if len(data) < 20 or data[1] != PSFB or data[0] & 0x1F != FMT_AFB or data[12:16] != _REMB:
        return None
    word: int = struct.unpack_from("!I", data, 16)[0] & 0xFFFFFF
    return (word & 0x3FFFF) << (word >> 18)


def _block(b: ReportBlock) -> bytes:
    lost = b.packets_lost & 0xFFFFFF
    return struct.pack("!IIIIII", b.ssrc, (b.fraction_lost & 0xFF) << 24 | lost,
                       b.highest_sequence, b.jitter, b.lsr, b.dlsr)


def sender_report(report: SenderReport, blocks: tuple[ReportBlock, ...] = ()) -> bytes:
    body = struct.pack("!IQIII", report.ssrc, report.ntp, report.rtp_timestamp,
                       report.packets & 0xFFFFFFFF, report.octets & 0xFFFFFFFF)
    body += b"".join(_block(b) for b in blocks)
    return _header(len(blocks), SR, len(body)) + body


def receiver_report(ssrc: int, blocks: tuple[ReportBlock, ...]) -> bytes:
    body = struct.pack("!I", ssrc) + b"".join(_block(b) for b in blocks)
    return _header(len(blocks), RR, len(body)) + body
