"""The one module that touches aiortc/aioice internals (aiortc 1.16, aioice 0.13).

A `PeerLink` is one participant's RTCPeerConnection, tapped at the RTP level:
- incoming SRTP packets are taken at the ICE connection's `data_received` callback (the socket
  callback), unprotected with the DTLS transport's `_rx_srtp` session and handed to a listener as
  raw bytes (aiortc's receive path, jitter buffer and decoder are skipped: forwarding needs none
  of them); DTLS and anything before the keys go the stock way;
- the answer's SSRCs are the senders' `_ssrc` / `_rtx_ssrc`, the program slots share one
  `_stream_id` (lip sync), and connectivity checks are guarded on `iceGatherer._connection`;
- outgoing program packets are SRTP-protected with the transport's session and gathered in an
  `Outbox` for the rest of the loop turn, then written straight to the nominated ICE pair's
  socket: a run of equal-size packets (a video frame) to one site is one UDP GSO write, one
  system call instead of one per packet (no per-packet coroutine either);
- the stock sender's own RTCP loop (sender reports about packets it never sent) is replaced by
  an idle one.
`tests/media/test_aiortc_internals.py` fails loudly when an upgrade moves any of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aioice
import aioice.candidate
import aioice.ice
import aioice.turn
import pylibsrtp
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp._binding import ffi, lib

from bridge.media.rtcp import is_rtcp
from bridge.media.sdp import Network, address_allowed, filter_candidates, media_ssrcs

log = logging.getLogger(__name__)

FORWARDED_CODECS = {"audio": "audio/opus", "video": "video/VP8"}
# UDP generic segmentation offload (Linux >= 4.18): one write, the kernel cuts it into datagrams
SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
GSO_MAX_SEGMENTS = 32  # the kernel takes up to 64 (128 since 5.x) and 64 KiB in all
GSO_MAX_BYTES = 60_000
GSO_UNSUPPORTED = (errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP)  # this kernel or route: never


class PeerListener(Protocol):
    """Where a PeerLink hands its media (the media router implements it)."""

    def on_rtp(self, participant_id: str, kind: str, data: bytes) -> None: ...

    def on_rtcp(self, participant_id: str, data: bytes) -> None: ...


class LinePlan(Protocol):
    """One m-line the participant offers (bridge.media.policy.Line)."""

    @property
    def kind(self) -> str: ...

    @property
    def send(self) -> bool: ...

    @property
    def slot(self) -> str | None: ...

    @property
    def stream(self) -> str:
        """What the participant sends on it: "audio", "video" or "video-low"."""
        ...


class HostSockets:
    """How the bridge's ICE connections gather host candidates: on the policy's addresses, bound
    within its port range and announced as its public addresses when those are set. Ports are
    tried from a cursor that moves on, so a port just freed is the last one reused (a late
    packet for the site that had it meets nobody)."""

    def __init__(self, addresses: Sequence[str], announce: Sequence[str],
                 ports: range | None) -> None:
        self._addresses = list(addresses)
        self._announced = dict(zip(addresses, announce, strict=True)) if announce else {}
        self._ports = ports
        self._next = 0
        self.exhausted = 0  # host candidates not offered: every port of the range was taken

    def adopt(self, connection: Any) -> None:
        """Make this (not yet gathering) aioice connection gather the policy's host candidates."""
        if not self._addresses or getattr(connection, "_hallbridge_hosts", False):
            return  # aioice's default (every interface but loopback), or adopted already
        connection._hallbridge_hosts = True
        stock = connection.get_component_candidates  # bound method of aioice's class
        wanted = [a for a in self._addresses
                  if (":" in a and connection._use_ipv6) or (":" not in a and connection._use_ipv4)]
        if self._ports is None and not self._announced:
            async def on_addresses(component: int, addresses: list[str],
                                   timeout: int = 5) -> list[Any]:
                return list(await stock(component, wanted if addresses else [], timeout))
            connection.get_component_candidates = on_addresses
            return

        async def bound_here(component: int, addresses: list[str], timeout: int = 5) -> list[Any]:
            hosts = [await self._bind(connection, component, a) for a in wanted] if addresses else []
            # the stock code with no addresses gathers only what TURN relays (a server-reflexive
            # candidate would need its own host socket: announce the address instead)
            return [c for c in hosts if c is not None] + list(await stock(component, [], timeout))

        connection.get_component_candidates = bound_here

    async def _bind(self, connection: Any, component: int, address: str) -> Any:
        loop = asyncio.get_running_loop()
        ports = self._ports or range(0, 1)  # port 0: the OS picks
        for step in range(len(ports)):
            port = ports[(self._next + step) % len(ports)]
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: aioice.ice.StunProtocol(connection), local_addr=(address, port))
            except OSError:
                continue
            self._next = (self._next + step + 1) % len(ports)
            break
        else:
            self.exhausted += 1
            log.warning("no free UDP port in %s on %s: this peer gets no host candidate",
                        self._ports, address)
            return None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
        bound = transport.get_extra_info("sockname")
        shown = self._announced.get(address, bound[0])
        protocol.local_candidate = aioice.Candidate(
            foundation=aioice.candidate.candidate_foundation("host", "udp", shown),
            component=component, transport="udp",
            priority=aioice.candidate.candidate_priority(component, "host"),
            host=shown, port=bound[1], type="host")
        connection._protocols.append(protocol)
        return protocol.local_candidate


@dataclass(frozen=True, slots=True)
class IcePolicy:
    servers: Sequence[str] = ()
    host_addresses: Sequence[str] = ("127.0.0.1",)
    remote_networks: Sequence[Network] = ()
    # what each host address is announced as (a 1:1 NAT's public address), by position
    announce_addresses: Sequence[str] = ()
    ports: range | None = None  # the UDP ports host candidates bind in (None: any the OS picks)
    hosts: HostSockets = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", HostSockets(self.host_addresses,
                                                      self.announce_addresses, self.ports))


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """What the negotiation fixed for one stream the bridge sends on one m-line."""

    name: str
    kind: str
    mid: str
    ssrc: int
    payload_type: int
    clock_rate: int
    extension_ids: dict[str, int] = field(default_factory=dict)  # uri -> id
    rtx_payload_type: int | None = None
    rtx_ssrc: int | None = None


class OfferRefused(ValueError):
    """The participant's SDP offer cannot be answered; the message says why."""


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """For the whole process: offer exactly these host candidates (aioice alone offers every
    interface but 127.0.0.1). The bridge's own connections follow their IcePolicy instead."""
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


def gso_runs(sizes: Sequence[int], limit: int = GSO_MAX_SEGMENTS,
             max_bytes: int = GSO_MAX_BYTES) -> list[tuple[int, int]]:
    """Cut a site's queued packets, in order, into runs one GSO write can carry: every packet
    of a run the size of its first, except a shorter last one; (start, end) index pairs."""
    runs = []
    i, n = 0, len(sizes)
    while i < n:
        size, j = sizes[i], i + 1
        most = min(limit, max(1, max_bytes // max(size, 1)))
        while j < n and j - i < most and sizes[j] == size:
            j += 1
        if j < n and j - i < most and sizes[j] < size:
            j += 1
        runs.append((i, j))
        i = j
    return runs


class Sink:
    """One site's way out: its SRTP session and a socket on the nominated pair's file."""

    def __init__(self, protect: Callable[[bytes], bytes], transport: Any, addr: tuple[str, int],
                 outbox: Outbox) -> None:
        self.protect = protect
        self.outbox = outbox
        self.transport = transport
        self.addr = addr
        # the event loop's transport has no sendmsg: a second handle on the same socket. A TURN
        # relay has no socket of its own (its framing is aioice's): packets go through it one by one
        raw = transport.get_extra_info("socket")
        self.sock: socket.socket | None = None
        if raw is not None and raw.type == socket.SOCK_DGRAM:
            self.sock = socket.socket(fileno=os.dup(raw.fileno()))
            self.sock.setblocking(False)
        self.gso = self.sock is not None and sys.platform == "linux"
        self.queued: list[bytes] = []  # this loop turn's packets (the outbox writes them)

    def push(self, packet: bytes) -> None:
        """Protect a packet and queue it for the end of this loop turn."""
        queued = self.queued
        queued.append(self.protect(packet))
        if len(queued) == 1:
            self.outbox.enlist(self)

    def write(self, packets: list[bytes]) -> int:
        """Send in order; how many the socket refused (its buffer full: dropped, never queued)."""
        sock, addr = self.sock, self.addr
        if sock is None:
            for packet in packets:
                self.transport.sendto(packet, addr)
            return 0
        if len(packets) == 1:  # most writes: an audio packet, a one-packet frame
            try:
                sock.sendto(packets[0], addr)
                return 0
            except OSError:
                return 1
        dropped = 0
        runs = gso_runs([len(p) for p in packets])
        if len(runs) > 1 and len(packets) > 2:  # each stream's packets together (audio between a
            streams: dict[bytes, list[bytes]] = {}  # frame's packets cuts its run), in order
            for packet in packets:
                streams.setdefault(packet[8:12], []).append(packet)  # SSRC: SRTP leaves it clear
            if len(streams) > 1:
                packets = [packet for stream in streams.values() for packet in stream]
                runs = gso_runs([len(p) for p in packets])
        for i, j in runs:
            try:
                if j - i == 1 or not self.gso:
                    for packet in packets[i:j]:
                        sock.sendto(packet, addr)
                else:
                    sock.sendmsg([b"".join(packets[i:j])],
                                 [(SOL_UDP, UDP_SEGMENT, len(packets[i]).to_bytes(2, sys.byteorder))],
                                 0, addr)
            except BlockingIOError:
                dropped += j - i
            except OSError as exc:
                if self.gso and j - i > 1 and exc.errno in (*GSO_UNSUPPORTED, errno.EINVAL, errno.EMSGSIZE):
                    # this write could not be cut (route MTU, size); never again on this kernel
                    self.gso = exc.errno not in GSO_UNSUPPORTED
                    for packet in packets[i:j]:
                        try:
                            sock.sendto(packet, addr)
                        except OSError:
                            dropped += 1
                else:
                    dropped += j - i
        return dropped

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class Outbox:
    """Packets for every site, gathered while the loop turn lasts (a video frame's packets arrive
    together and are fanned out in one turn), written at its end: per site, each stream in order,
    equal-size runs as one GSO write. Bounded by a turn's work."""

    def __init__(self) -> None:
        self._pending: list[Sink] = []  # sinks with packets queued, in the order they got them
        self._handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0  # packets a site's socket refused

    def enlist(self, sink: Sink) -> None:
        """A sink got its first packet of this turn (`Sink.push`)."""
        self._pending.append(sink)
        if self._handle is None:
            loop = self._loop or self._bind()
            self._handle = loop.call_soon(self.flush)

    def _bind(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()  # once: each lookup is a getpid() system call
        return self._loop

    def flush(self) -> None:
        self._handle = None
        pending, self._pending = self._pending, []
        for sink in pending:
            packets, sink.queued = sink.queued, []
            try:
                self.dropped += sink.write(packets)
            except Exception:  # one site's failure must not silence the others
                log.exception("writing to a site failed")
                self.dropped += len(packets)

    def close(self) -> None:
        """Write what is gathered now; nothing is scheduled afterwards."""
        if self._handle is not None:
            self._handle.cancel()
            self.flush()

    def discard(self, sink: Sink) -> None:
        sink.queued.clear()
        if sink in self._pending:
            self._pending.remove(sink)


class PeerLink:
    """One participant's peer connection: negotiate, receive raw RTP, send rewritten RTP."""

    def __init__(self, participant_id: str, policy: IcePolicy, listener: PeerListener,
                 on_state: Callable[[str], None], outbox: Outbox | None = None) -> None:
        servers = [RTCIceServer(urls=url) for url in policy.servers]
        self._pid = participant_id
        # max-bundle: one transport for every m-line (aiortc's "balanced" strands the extra
        # m-lines of a kind on a transport the offer's BUNDLE group never uses)
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=servers,
                                                      bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._policy = policy
        self._listener = listener
        self._on_state_change = on_state
        self._kind_by_pt: dict[int, str] = {}  # forwarded codecs only: RTX and others are dropped
        self._stream_by_ssrc: dict[int, str] = {}  # the offer's SSRCs, per line's stream
        self._remote_ssrc: dict[str, int] = {}  # stream -> SSRC
        self._slots: list[SlotInfo] = []
        self._inbound_ext: dict[str, dict[str, int]] = {}
        self._dtls: Any = None
        self._sink: Sink | None = None
        self._outbox = outbox or Outbox()
        self.ignored_packets = 0
        self.last_heard = time.monotonic()  # any SRTP/SRTCP packet from the participant
        self._pc.on("connectionstatechange", self._on_state)

    @property
    def participant_id(self) -> str:
        return self._pid

    @property
    def state(self) -> str:
        return str(self._pc.connectionState)

    @property
    def slots(self) -> list[SlotInfo]:
        return list(self._slots)

    def inbound_extension_ids(self, kind: str) -> dict[str, int]:
        return self._inbound_ext.get(kind, {})

    def remote_ssrc(self, stream: str) -> int | None:
        return self._remote_ssrc.get(stream)

    async def accept_offer(self, offer_sdp: str, lines: Sequence[LinePlan]) -> str:
        """Answer an offer whose m-lines follow `lines` (the role's layout), in order."""
        sdp = filter_candidates(offer_sdp, self._policy.remote_networks)
        if "a=group:BUNDLE" not in sdp:
            raise OfferRefused("the offer must bundle its m-lines (a=group:BUNDLE): one transport")
        offered = [line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")]
        if offered != [line.kind for line in lines]:
            expected = ", ".join(line.kind for line in lines)
            raise OfferRefused(f"the offer must have {len(lines)} m-lines in this order: {expected}")
        # the transceivers exist before the offer is applied, so that it is negotiated against
        # their codec preferences: the answer names Opus, VP8 and RTX only
        for line in lines:
            caps = RTCRtpSender.getCapabilities(line.kind).codecs
            wanted = (FORWARDED_CODECS[line.kind], f"{line.kind}/rtx")
            self._pc.addTransceiver(line.kind, direction="inactive").setCodecPreferences(
                [c for c in caps if c.mimeType in wanted])
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc reports malformed SDP with all sorts of exceptions
            raise OfferRefused(f"malformed SDP offer ({type(exc).__name__}: {exc})") from None
        transceivers = self._pc.getTransceivers()
        if [t.kind for t in transceivers] != [line.kind for line in lines]:
            expected = ", ".join(line.kind for line in lines)
            raise OfferRefused(f"the offer must have {len(lines)} m-lines in this order: {expected}")
        try:
            for transceiver, line in zip(transceivers, lines, strict=True):
                self._prepare(transceiver, line)
                connection = transceiver.receiver.transport.transport.iceGatherer._connection
                self._guard_ice(connection)
                self._policy.hosts.adopt(connection)
                _ask_for_opus_fec(transceiver)
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        except Exception as exc:  # aiortc trips over offers it parsed but cannot answer
            raise OfferRefused(f"the offer cannot be answered ({type(exc).__name__}: {exc})") from None
        self._learn_negotiated(transceivers, lines)
        self._learn_streams(sdp, lines)
        return str(self._pc.localDescription.sdp)

    def _learn_streams(self, sdp: str, lines: Sequence[LinePlan]) -> None:
        """Which stream each SSRC the offer announces is: two video lines (two layers) share a
        payload type under BUNDLE, so the SSRC tells them apart."""
        for ssrcs, line in zip(media_ssrcs(sdp), lines, strict=True):
            if not line.send:
                continue
            for ssrc in ssrcs:
                self._stream_by_ssrc[ssrc] = line.stream
            if ssrcs:
                self._remote_ssrc.setdefault(line.stream, ssrcs[0])

    def _prepare(self, transceiver: Any, line: LinePlan) -> None:
        kind = transceiver.kind
        if line.slot is not None:
            transceiver.sender.replaceTrack(HoldTrack(kind))
            if line.slot.startswith("program-"):  # program audio and video: one stream, lip sync
                transceiver.sender._stream_id = "program"
            direction = "sendrecv" if line.send else "sendonly"
        else:
            direction = "recvonly" if line.send else "inactive"
        # aiortc answers with this direction intersected with the offer's (reversed)
        transceiver.direction = direction
        transceiver.sender._run_rtcp = _quiet_rtcp_loop(transceiver.sender)

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

    def _learn_negotiated(self, transceivers: list[Any], lines: Sequence[LinePlan]) -> None:
        for transceiver, line in zip(transceivers, lines, strict=True):
            kind = transceiver.kind
            ext = {e.uri: e.id for e in transceiver._headerExtensions}
            primary = [c for c in transceiver._codecs
                       if c.mimeType == FORWARDED_CODECS[kind] and c.payloadType is not None]
            if not primary:
                continue
            codec = primary[0]
            direction = transceiver.currentDirection
            if line.send and direction in ("sendrecv", "recvonly"):
                self._kind_by_pt[codec.payloadType] = kind
                self._inbound_ext.setdefault(kind, ext)
            if line.slot is not None and direction in ("sendrecv", "sendonly"):
                rtx = [c.payloadType for c in transceiver._codecs if c.mimeType.endswith("/rtx")
                       and c.parameters.get("apt") == codec.payloadType]
                self._slots.append(SlotInfo(
                    line.slot, kind, str(transceiver.mid), transceiver.sender._ssrc,
                    codec.payloadType, codec.clockRate, ext, rtx[0] if rtx else None,
                    transceiver.sender._rtx_ssrc if rtx else None))
            dtls = transceiver.receiver.transport
            if dtls is not None and dtls is not self._dtls:
                self._tap(dtls)

    def _tap(self, dtls: Any) -> None:
        """Take decrypted SRTP straight from the socket callback: no queue, no task hop."""
        self._dtls = dtls
        connection = dtls.transport._connection
        queued = connection.data_received

        def received(data: bytes, component: int) -> None:
            self.last_heard = time.monotonic()
            rx = dtls._rx_srtp
            if rx is None or not 127 < data[0] < 192:
                queued(data, component)  # DTLS and anything before keys: the stock path
                return
            try:
                if is_rtcp(data):
                    self._listener.on_rtcp(self._pid, rx.unprotect_rtcp(data))
                else:
                    self._on_rtp(rx.unprotect(data))
            except pylibsrtp.Error:
                self.ignored_packets += 1

        connection.data_received = received

    def _on_rtp(self, data: bytes) -> None:
        kind = self._kind_by_pt.get(data[1] & 0x7F) if len(data) >= 12 else None
        if kind is None:
            self.ignored_packets += 1
            return
        ssrc = int.from_bytes(data[8:12], "big")
        stream = self._stream_by_ssrc.get(ssrc)
        if stream is None:  # an offer without a=ssrc lines: the first SSRC of a kind is its stream
            stream = kind
            known = self._remote_ssrc.get(stream)
            if known is None:
                self._remote_ssrc[stream] = ssrc
            elif known != ssrc:
                self.ignored_packets += 1
                return
            self._stream_by_ssrc[ssrc] = stream
        self._listener.on_rtp(self._pid, stream, data)

    def send_rtp(self, packet: bytes) -> bool:
        """SRTP-protect one packet for the end of this loop turn; False when it was dropped (not
        connected yet). A socket that refuses it then counts it in `Outbox.dropped`."""
        sink = self._sink or self._find_sink()
        if sink is None:
            return False
        sink.push(packet)
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        sink = self._sink or self._find_sink()
        if sink is None or self._dtls is None:
            return False
        sink.transport.sendto(self._dtls._tx_srtp.protect_rtcp(packet), sink.addr)
        return True

    def _find_sink(self) -> Sink | None:
        """The SRTP session and the nominated pair's socket, once connected (then cached)."""
        dtls = self._dtls
        srtp = getattr(dtls, "_tx_srtp", None)
        if srtp is None:
            return None
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None or pair.protocol.transport is None:
            return None
        self._sink = Sink(fast_protect(srtp), pair.protocol.transport, pair.remote_addr, self._outbox)
        return self._sink

    def _drop_sink(self) -> None:
        if self._sink is not None:
            self._outbox.discard(self._sink)
            self._sink.close()
            self._sink = None

    def _on_state(self) -> None:
        self._drop_sink()  # found again on the next send: the transport may have changed
        self._on_state_change(self.state)

    async def close(self) -> None:
        self._drop_sink()
        try:
            await self._pc.close()
        except Exception:  # a half-negotiated connection (a bad offer): stop what exists
            log.debug("closing a half-built peer connection of %s", self._pid, exc_info=True)
            for transceiver in self._pc.getTransceivers():
                for end in (transceiver.sender, transceiver.receiver):
                    dtls = end.transport
                    if dtls is None:
                        continue
                    with contextlib.suppress(Exception):
                        await dtls.stop()
                    with contextlib.suppress(Exception):
                        await dtls.transport.stop()


OPUS_FEC = {"minptime": 10, "useinbandfec": 1}


def _ask_for_opus_fec(transceiver: Any) -> None:
    """The answer tells the browser the bridge's side takes Opus in-band FEC (RFC 7587): its
    encoder then puts each frame's low-bitrate copy in the next packet, which every site's
    decoder uses to fill a lost packet. The bridge forwards the packets as they are."""
    for codec in transceiver._codecs:  # negotiated, from the offer; the answer is made from them
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters.update(OPUS_FEC)


def fast_protect(session: Any) -> Callable[[bytes], bytes]:
    """SRTP protect without pylibsrtp's per-call allocation (~1 us of ~3 per packet per site).

    Same C call and buffer as `Session.protect`; the session's trailer room is checked once.
    """
    cdata, buffer, srtp = session._cdata, session._buffer, session._srtp
    length = ffi.new("int *")
    room = len(cdata) - SRTP_MAX_TRAILER_LEN

    def protect(packet: bytes) -> bytes:
        n = len(packet)
        if n > room:
            raise ValueError("packet is too long")
        buffer[0:n] = packet
        length[0] = n
        if lib.srtp_protect(srtp[0], cdata, length):
            raise pylibsrtp.Error("srtp_protect failed")
        return buffer[0 : length[0]]  # type: ignore[no-any-return]

    return protect


def _quiet_rtcp_loop(sender: RTCRtpSender) -> Callable[[], Coroutine[Any, Any, None]]:
    """The stock sender's RTCP loop: it would report packets it never sent, about once a second
    for each of 132 senders; the router reports instead. This one only keeps the start/exit
    handshake that `RTCRtpSender.stop()` waits for. It holds the two events, not the sender: a
    sender referring to itself would wait for the cyclic collector instead of going at once."""
    started: asyncio.Event = sender._RTCRtpSender__rtcp_started  # type: ignore[attr-defined]
    exited: asyncio.Event = sender._RTCRtpSender__rtcp_exited  # type: ignore[attr-defined]

    async def run() -> None:
        started.set()
        try:
            await asyncio.get_running_loop().create_future()  # until stop() cancels it
        except asyncio.CancelledError:
            pass
        finally:
            exited.set()

    return run


__all__ = ["IcePolicy", "LinePlan", "OfferRefused", "Outbox", "PeerLink", "PeerListener", "SlotInfo",
           "gso_runs"]
