from __future__ import annotations

import struct

from bridge.media.rtp import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    audio_level,
    build_template,
    parse_header,
    render,
    render_rtx,
    vp8_is_keyframe_start,
)


def rtp(pt: int = 96, seq: int = 1, ts: int = 1000, ssrc: int = 0xABCD, marker: bool = False,
        ext: list[tuple[int, bytes]] | None = None, payload: bytes = b"\x10\x00\x00",
        csrcs: int = 0) -> bytes:
    body = b""
    if ext:
        for i, v in ext:
            body += bytes([(i << 4) | (len(v) - 1)]) + v
        body += b"\x00" * (-len(body) % 4)
        body = struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    first = 0x80 | (0x10 if ext else 0) | csrcs
    header = struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    return header + b"\x00\x00\x00\x07" * csrcs + body + payload


def test_parse_reads_fields_and_extensions() -> None:
    h = parse_header(rtp(pt=111, seq=65535, ts=2**32 - 1, marker=True, ext=[(1, b"0"), (3, b"\x85")]))
    assert h is not None
    assert (h.payload_type, h.sequence, h.timestamp, h.marker) == (111, 65535, 2**32 - 1, True)
    assert h.extensions == {1: b"0", 3: b"\x85"}
    assert audio_level(h, 3) == (True, 5)
    assert audio_level(h, 4) is None


def test_parse_refuses_garbage() -> None:
    assert parse_header(b"\x80\x60") is None
    assert parse_header(b"\x40" + b"\x00" * 20) is None  # version 1
    truncated = rtp(ext=[(1, b"abcd")])[:14]
    assert parse_header(truncated) is None


def test_template_keeps_only_forwarded_extensions_with_the_sinks_ids() -> None:
    data = rtp(ext=[(1, b"0"), (2, b"\x01\x02\x03"), (3, b"\x90")], csrcs=1, marker=True)
    h = parse_header(data)
    assert h is not None
    source = {URI_MID: 1, URI_ABS_SEND_TIME: 2, URI_AUDIO_LEVEL: 3}
    sink = {URI_MID: 9, URI_ABS_SEND_TIME: 5, URI_AUDIO_LEVEL: 7}
    out = render(build_template(data, h, source, sink), 100, 7, 123456, 0x11223344)
    oh = parse_header(out)
    assert oh is not None
    assert oh.extensions == {5: b"\x01\x02\x03", 7: b"\x90"}, "MID dropped, ids mapped"
    assert out[oh.payload_offset:] == data[h.payload_offset:]
    assert (oh.payload_type, oh.marker, oh.sequence, oh.timestamp, oh.ssrc) == (
        100, True, 7, 123456, 0x11223344)


def test_template_without_extensions_clears_the_x_bit() -> None:
    data = rtp(ext=[(1, b"0")])
    h = parse_header(data)
    assert h is not None
    out = render(build_template(data, h, {URI_MID: 1}, {}), 96, 1, 2, 3)
    assert not out[0] & 0x10 and len(out) == 12 + len(data) - h.payload_offset


def test_rtx_carries_the_original_sequence_number_first() -> None:
    data = rtp(payload=b"\x10\x50\x00")
    h = parse_header(data)
    assert h is not None
    out = render_rtx(build_template(data, h, {}, {}), 97, 500, 9000, 0xBEEF, 0x1234)
    oh = parse_header(out)
    assert oh is not None and (oh.payload_type, oh.sequence, oh.ssrc) == (97, 500, 0xBEEF)
    assert out[oh.payload_offset:] == b"\x12\x34\x10\x50\x00"


def test_vp8_keyframe_detection() -> None:
    assert vp8_is_keyframe_start(b"\x10\x50\x00\x00\x9d\x01\x2a")  # S=1, PID=0, P=0
    assert not vp8_is_keyframe_start(b"\x10\x01")  # inter frame (P=1)
    assert not vp8_is_keyframe_start(b"\x00\x00")  # not a partition start
    # X=1, I=1 with a 15-bit picture id, then the frame header
    assert vp8_is_keyframe_start(b"\x90\x80\x81\x23\x00")
    assert not vp8_is_keyframe_start(b"\x90\x80\x81\x23\x01")
    # X=1, I L T K all set: 2-byte picture id, TL0PICIDX, TID byte
    assert vp8_is_keyframe_start(b"\x90\xf0\x80\x01\x05\x20\x00")
    assert not vp8_is_keyframe_start(b"")
