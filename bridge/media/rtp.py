"""Pure RTP wire helpers: parse a header once, build a per-layout template, patch per site.

RFC 3550 fixed header, RFC 8285 header extensions (one-byte and two-byte forms), RFC 7741 VP8
payload descriptor (keyframe detection). No I/O, no aiortc: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
# Extensions forwarded to sites. The MID is not: it names the source's m-line, not the site's;
# sites demultiplex the program by the SSRC the answer announces.
FORWARDED_URIS = (URI_AUDIO_LEVEL, URI_ABS_SEND_TIME)

_ONE_BYTE_PROFILE = 0xBEDE
_TWO_BYTE_MASK = 0xFFF0
_TWO_BYTE_PROFILE = 0x1000
_SEQ_TS_SSRC = struct.Struct("!HII")


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """The fields of one RTP packet that forwarding reads."""

    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    extensions: dict[int, bytes]  # extension id -> value
    payload_offset: int  # first byte after the header (CSRCs and extensions included)


def parse_header(data: bytes) -> RtpHeader | None:
    """The header of an RTP packet, or None when it is not a well-formed RTP version 2 packet."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    extensions: dict[int, bytes] = {}
    if data[0] & 0x10:
        if len(data) < offset + 4:
            return None
        profile, words = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + 4 * words
        if len(data) < end:
            return None
        extensions = _parse_extensions(profile, data[offset + 4 : end])
        offset = end
    if offset > len(data):
        return None
    sequence, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
    return RtpHeader(data[1] & 0x7F, bool(data[1] & 0x80), sequence, timestamp, ssrc,
                     extensions, offset)


def _parse_extensions(profile: int, block: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    two_byte = (profile & _TWO_BYTE_MASK) == _TWO_BYTE_PROFILE
    if profile != _ONE_BYTE_PROFILE and not two_byte:
        return out
    i = 0
    while i < len(block):
        if block[i] == 0:  # padding
            i += 1
            continue
        if two_byte:
            if i + 2 > len(block):
                break
            ext_id, length, i = block[i], block[i + 1], i + 2
        else:
            ext_id, length, i = block[i] >> 4, (block[i] & 0x0F) + 1, i + 1
            if ext_id == 15:  # reserved: stop parsing (RFC 8285 section 4.2)
                break
        out[ext_id] = bytes(block[i : i + length])
        i += length
    return out


def build_extension_block(elements: list[tuple[int, bytes]]) -> bytes:
    """An RFC 8285 one-byte-header block (with its 4-byte preamble), padded to 32 bits."""
    body = bytearray()
    for ext_id, value in elements:
        if 1 <= ext_id <= 14 and 1 <= len(value) <= 16:
            body.append((ext_id << 4) | (len(value) - 1))
            body += value
    if not body:
        return b""
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", _ONE_BYTE_PROFILE, len(body) // 4) + bytes(body)


@dataclass(frozen=True, slots=True)
class Template:
    """A packet re-laid for one extension layout; numbers are written per site by `render`."""

    first: int  # first header byte: V, P, X (CSRCs dropped)
    marker: int  # 0x80 or 0
    extensions: bytes  # RFC 8285 block with its preamble, or b""
    payload: bytes  # payload and padding, as received
    tail: bytes  # extensions + payload: what follows the 12-byte header of every copy


def abs_send_time(now: float) -> bytes:
    """The abs-send-time value for a packet sent at `now` (seconds): 6.18 fixed point, 24 bits."""
    return (int(now * (1 << 18)) & 0xFFFFFF).to_bytes(3, "big")


def restamp(block: bytes, ext_id: int, value: bytes) -> bytes:
    """A one-byte-header extension block (with preamble, as `build_extension_block` makes) with
    extension `ext_id`'s value replaced by one of the same length; unchanged when it has none."""
    if len(block) < 4 or block[:2] != b"\xbe\xde":
        return block
    i = 4
    while i < len(block):
        if block[i] == 0:
            i += 1
            continue
        found, length = block[i] >> 4, (block[i] & 0x0F) + 1
        if found == 15:
            break
        if found == ext_id and length == len(value):
            return block[: i + 1] + value + block[i + 1 + length :]
        i += 1 + length
    return block


def build_template(
    data: bytes, header: RtpHeader, source_ids: Mapping[str, int], sink_ids: Mapping[str, int],
    send_time: bytes | None = None, payload: bytes | None = None,
) -> Template:
    """Forwarded extensions only, with the sink's ids. The MID is never forwarded. With
    `send_time`, abs-send-time says when the bridge sends the packet (not when the publisher did),
    so a site's bandwidth estimator measures the bridge's path to it; `payload` replaces the
    packet's own (a VP8 descriptor renumbered for the site)."""
    elements = []
    for uri in FORWARDED_URIS:
        src_id, dst_id = source_ids.get(uri), sink_ids.get(uri)
        if dst_id is None:
            continue
        if uri == URI_ABS_SEND_TIME and send_time is not None:
            elements.append((dst_id, send_time))
        elif src_id is not None and src_id in header.extensions:
            elements.append((dst_id, header.extensions[src_id]))
    block = build_extension_block(elements)
    first = (data[0] & 0xE0) | (0x10 if block else 0)
    if payload is None:
        payload = bytes(data[header.payload_offset :])
    return Template(first, data[1] & 0x80, block, payload, block + payload)


_HEADER = struct.Struct("!BBHII")


def render(t: Template, payload_type: int, sequence: int, timestamp: int, ssrc: int) -> bytes:
    """The packet for one site: its payload type, sequence number, timestamp and SSRC."""
    return _HEADER.pack(t.first, t.marker | payload_type, sequence, timestamp, ssrc) + t.tail


def render_rtx(t: Template, payload_type: int, sequence: int, timestamp: int, ssrc: int,
               original_sequence: int) -> bytes:
    """A retransmission in an RTX stream (RFC 4588): the original sequence number leads the payload."""
    head = _HEADER.pack(t.first, t.marker | payload_type, sequence, timestamp, ssrc)
    return head + t.extensions + struct.pack("!H", original_sequence) + t.payload


def vp8_descriptor_size(payload: bytes | memoryview) -> int:
    """Bytes of the RFC 7741 payload descriptor at the start of a VP8 RTP payload."""
    if not payload:
        return 0
    i = 1
    if payload[0] & 0x80:  # X: extended control bits
        if len(payload) < 2:
            return len(payload)
        ext = payload[1]
        i = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= i:
                return len(payload)
            i += 2 if payload[i] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            i += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    return min(i, len(payload))


def vp8_is_keyframe_start(payload: bytes | memoryview) -> bool:
    """True for the first packet of a VP8 keyframe (RFC 7741 descriptor, then the P bit)."""
    if not payload:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S (start of partition) set, partition index 0
        return False
    i = vp8_descriptor_size(payload)
    return len(payload) > i and not payload[i] & 0x01


def vp8_frame_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe (RFC 6386 section 9.1)."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return (int.from_bytes(frame[6:8], "little") & 0x3FFF,
            int.from_bytes(frame[8:10], "little") & 0x3FFF)


def audio_level(header: RtpHeader, ext_id: int | None) -> tuple[bool, int] | None:
    """RFC 6464 (voice activity, level in -dBov 0..127) when the packet carries it."""
    if ext_id is None:
        return None
    value = header.extensions.get(ext_id)
    if not value:
        return None
    return bool(value[0] & 0x80), value[0] & 0x7F


def vp8_picture_id(payload: bytes | memoryview) -> int | None:
    """The VP8 PictureID (RFC 7741 section 4.2), or None when the descriptor has none."""
    if len(payload) < 3 or not payload[0] & 0x80 or not payload[1] & 0x80:
        return None
    if payload[2] & 0x80:
        return ((payload[2] & 0x7F) << 8) | payload[3] if len(payload) > 3 else None
    return payload[2] & 0x7F


@dataclass(frozen=True, slots=True)
class Vp8Ids:
    """The numbering fields of a VP8 payload descriptor (RFC 7741 section 4.2)."""

    picture_id: int | None  # 15 bits (or 7 when the sender uses the short form)
    long_id: bool
    tl0_index: int | None  # TL0PICIDX


def vp8_ids(payload: bytes | memoryview) -> Vp8Ids | None:
    """The picture id and TL0PICIDX of a VP8 payload, or None when it carries neither."""
    if len(payload) < 2 or not payload[0] & 0x80:
        return None
    ext, i = payload[1], 2
    picture_id, long_id, tl0 = None, False, None
    if ext & 0x80:
        if len(payload) <= i:
            return None
        long_id = bool(payload[i] & 0x80)
        if long_id:
            if len(payload) <= i + 1:
                return None
            picture_id = ((payload[i] & 0x7F) << 8) | payload[i + 1]
            i += 2
        else:
            picture_id = payload[i] & 0x7F
            i += 1
    if ext & 0x40:
        if len(payload) <= i:
            return None
        tl0 = payload[i]
    if picture_id is None and tl0 is None:
        return None
    return Vp8Ids(picture_id, long_id, tl0)


def vp8_renumber(payload: bytes, picture_id: int | None, tl0_index: int | None) -> bytes:
    """The payload with its descriptor's picture id and TL0PICIDX replaced (same length: the
    picture id keeps its 7- or 15-bit form, so packetization is untouched)."""
    out = bytearray(payload)
    ext, i = out[1], 2
    if ext & 0x80:
        if out[i] & 0x80:
            if picture_id is not None:
                out[i] = 0x80 | ((picture_id >> 8) & 0x7F)
                out[i + 1] = picture_id & 0xFF
            i += 2
        else:
            if picture_id is not None:
                out[i] = picture_id & 0x7F
            i += 1
    if ext & 0x40 and tl0_index is not None:
        out[i] = tl0_index & 0xFF
    return bytes(out)
