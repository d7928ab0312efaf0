"""The one module that touches aiortc/aioice internals (aiortc 1.16, aioice 0.13).

A `PeerLink` is one participant's RTCPeerConnection, tapped at the RTP level:
- incoming SRTP-decrypted RTP/RTCP is taken at `RTCDtlsTransport._handle_rtp_data/_rtcp_data`
  and handed to a listener as raw bytes (aiortc's receive path, jitter buffer and decoder are
  skipped: forwarding needs none of them);
- outgoing program packets are SRTP-protected with the transport's session and written straight
  to the nominated ICE pair's socket (no per-packet coroutine);
- the stock sender's own RTCP (sender reports about packets it never sent) is suppressed.
`tests/media/test_aiortc_internals.py` fails loudly when an upgrade moves any of these.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from bridge.media.sdp import Network, address_allowed, filter_candidates

log = logging.getLogger(__name__)

KINDS = ("audio", "video")
FORWARDED_CODECS = {"audio": "audio/opus", "video": "video/VP8"}
RTCP_PSFB = 206
RTCP_PSFB_PLI = 1
RTCP_PSFB_FIR = 4
# bytes waiting in one site's socket buffer before its packets are dropped (a slow site never
# holds memory or delays others)
SEND_BUFFER_LIMIT = 512 * 1024


class PeerListener(Protocol):
    """Where a PeerLink hands its media (the program router implements it)."""

    def on_rtp(self, participant_id: str, kind: str, data: bytes) -> None: ...

    def on_keyframe_request(self, participant_id: str, kind: str) -> None: ...


@dataclass(frozen=True, slots=True)
class IcePolicy:
    servers: Sequence[str] = ()
    host_addresses: Sequence[str] = ("127.0.0.1",)
    remote_networks: Sequence[Network] = ()


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The negotiated numbering of one direction of one kind on this peer connection."""

    ssrc: int
    payload_type: int
    clock_rate: int
    extension_ids: dict[str, int] = field(default_factory=dict)  # uri -> id


class OfferRefused(ValueError):
    """The participant's SDP offer cannot be answered; the message says why."""


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Offer exactly these host candidates (aioice alone offers every interface but 127.0.0.1)."""
    if not addresses:
        aioice.ice.get_host_addresses = _STOCK_HOST_ADDRESSES
        return
    fixed = list(addresses)

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured


_STOCK_HOST_ADDRESSES = aioice.ice.get_host_addresses


class HoldTrack(MediaStreamTrack):
    """A sender track that never yields: the stock RTP loop waits on it forever, idle."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        await self._never
        raise RuntimeError("unreachable")

    def stop(self) -> None:
        self._never.cancel()
        super().stop()


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """An RTCP picture loss indication (RFC 4585 section 6.3.1)."""
    return struct.pack("!BBHII", 0x80 | RTCP_PSFB_PLI, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


class PeerLink:
    """One participant's peer connection: negotiate, receive raw RTP, send rewritten RTP."""

    def __init__(self, participant_id: str, policy: IcePolicy, listener: PeerListener,
                 on_state: Callable[[str], None]) -> None:
        restrict_host_addresses(policy.host_addresses)
        servers = [RTCIceServer(urls=url) for url in policy.servers]
        self.participant_id = participant_id
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self._policy = policy
        self._listener = listener
        self._on_state_change = on_state
        self._kind_by_pt: dict[int, str] = {}
        self._remote_ssrc: dict[str, int] = {}
        self._outbound: dict[str, StreamInfo] = {}
        self._inbound_ext: dict[str, dict[str, int]] = {}
        self._dtls: Any = None
        self._pc.on("connectionstatechange", self._on_state)

    @property
    def state(self) -> str:
        return str(self._pc.connectionState)

    def outbound(self, kind: str) -> StreamInfo | None:
        return self._outbound.get(kind)

    def inbound_extension_ids(self, kind: str) -> dict[str, int]:
        return self._inbound_ext.get(kind, {})

    async def accept_offer(self, offer_sdp: str, send: bool) -> str:
        """Answer a participant's offer; `send`: the bridge sends it the program on every m-line."""
        sdp = filter_candidates(offer_sdp, self._policy.remote_networks)
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except (AssertionError, ValueError, KeyError, IndexError, TypeError) as exc:
            # aiortc's parser reports malformed SDP with any of these
            raise OfferRefused(f"malformed SDP offer ({type(exc).__name__}: {exc})") from None
        kinds = {t.kind for t in self._pc.getTransceivers()}
        if not kinds & set(KINDS):
            raise OfferRefused("the offer has no audio or video section")
        for transceiver in self._pc.getTransceivers():
            self._prepare(transceiver, send)
            self._guard_ice(transceiver.receiver.transport.transport.iceGatherer._connection)
        answer = await self._pc.createAnswer()
        await self._pc.setLocalDescription(answer)
        self._learn_negotiated()
        return str(self._pc.localDescription.sdp)

    def _prepare(self, transceiver: Any, send: bool) -> None:
        kind = transceiver.kind
        mime = FORWARDED_CODECS.get(kind)
        caps = RTCRtpSender.getCapabilities(kind).codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType in (mime, f"{kind}/rtx")])
        if send and transceiver.sender.track is None:
            transceiver.sender.replaceTrack(HoldTrack(kind))
        # aiortc answers with this direction intersected with the offer's (reversed)
        transceiver.direction = "sendrecv" if send else "recvonly"
        transceiver.sender._send_rtcp = _suppressed_rtcp

    def _guard_ice(self, connection: Any) -> None:
        """Answer connectivity checks only from allowed networks: a browser that also sends from
        another interface must not get a peer-reflexive pair outside them."""
        networks = self._policy.remote_networks
        if not networks or getattr(connection, "_hallbridge_guarded", False):
            return
        original = connection.request_received

        def guarded(message: Any, addr: tuple[str, int], protocol: Any) -> None:
            if address_allowed(addr[0], networks):
                original(message, addr, protocol)

        connection.request_received = guarded
        connection._hallbridge_guarded = True

    def _learn_negotiated(self) -> None:
        for transceiver in self._pc.getTransceivers():
            kind, codecs = transceiver.kind, transceiver._codecs
            ext = {e.uri: e.id for e in transceiver._headerExtensions}
            pts = {c.payloadType: c for c in codecs if c.payloadType is not None}
            self._kind_by_pt.update(dict.fromkeys(pts, kind))
            primary = [(pt, c) for pt, c in pts.items() if c.mimeType == FORWARDED_CODECS[kind]]
            if not primary:
                continue
            self._inbound_ext[kind] = ext
            if transceiver.currentDirection in ("sendrecv", "sendonly"):
                pt, codec = primary[0]
                self._outbound[kind] = StreamInfo(transceiver.sender._ssrc, pt, codec.clockRate, ext)
            dtls = transceiver.receiver.transport
            if dtls is not self._dtls and dtls is not None:
                self._tap(dtls)

    def _tap(self, dtls: Any) -> None:
        self._dtls = dtls
        dtls._handle_rtp_data = self._on_rtp_data
        dtls._handle_rtcp_data = self._on_rtcp_data

    async def _on_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        if len(data) < 12:
            return
        kind = self._kind_by_pt.get(data[1] & 0x7F)
        if kind is None:
            return
        if kind not in self._remote_ssrc:
            self._remote_ssrc[kind] = int.from_bytes(data[8:12], "big")
        self._listener.on_rtp(self.participant_id, kind, data)

    async def _on_rtcp_data(self, data: bytes) -> None:
        for media_ssrc in _keyframe_requests(data):
            for kind, info in self._outbound.items():
                if info.ssrc == media_ssrc:
                    self._listener.on_keyframe_request(self.participant_id, kind)

    def send_rtp(self, packet: bytes | bytearray) -> bool:
        """SRTP-protect and send one packet; False when it was dropped (not connected, backlog)."""
        srtp = getattr(self._dtls, "_tx_srtp", None)
        connection = getattr(getattr(self._dtls, "transport", None), "_connection", None)
        pair = connection._nominated.get(1) if connection is not None else None
        if srtp is None or pair is None or pair.protocol.transport is None:
            return False
        transport = pair.protocol.transport
        if transport.get_write_buffer_size() > SEND_BUFFER_LIMIT:
            return False
        transport.sendto(srtp.protect(bytes(packet)), pair.remote_addr)
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        srtp = getattr(self._dtls, "_tx_srtp", None)
        connection = getattr(getattr(self._dtls, "transport", None), "_connection", None)
        pair = connection._nominated.get(1) if connection is not None else None
        if srtp is None or pair is None or pair.protocol.transport is None:
            return False
        pair.protocol.transport.sendto(srtp.protect_rtcp(packet), pair.remote_addr)
        return True

    def request_keyframe(self, kind: str = "video") -> bool:
        media_ssrc = self._remote_ssrc.get(kind)
        own = self._outbound.get(kind)
        sender_ssrc = own.ssrc if own else 1
        return media_ssrc is not None and self.send_rtcp(pli(sender_ssrc, media_ssrc))

    def _on_state(self) -> None:
        self._on_state_change(self.state)

    async def close(self) -> None:
        await self._pc.close()


async def _suppressed_rtcp(packets: list[Any]) -> None:
    """The stock sender's reports describe packets it never sent: the router reports instead."""


def _keyframe_requests(data: bytes) -> list[int]:
    """Media SSRCs named by the PLI/FIR messages of a compound RTCP packet."""
    out, i = [], 0
    while i + 4 <= len(data):
        first, packet_type, words = data[i], data[i + 1], struct.unpack_from("!H", data, i + 2)[0]
        end = i + 4 + 4 * words
        if packet_type == RTCP_PSFB and end <= len(data) and end - i >= 12:
            fmt = first & 0x1F
            if fmt == RTCP_PSFB_PLI:
                out.append(struct.unpack_from("!I", data, i + 8)[0])
            elif fmt == RTCP_PSFB_FIR and end - i >= 16:
                out.append(struct.unpack_from("!I", data, i + 12)[0])
        i = end
    return out


__all__ = ["IcePolicy", "PeerLink", "PeerListener", "StreamInfo"]
