"""Guard: the aiortc/aioice internals that bridge/media/aiortc_adapter.py relies on.

When one of these fails after an upgrade, re-read the adapter against the new aiortc before
widening the version range in pyproject.toml.
"""

from __future__ import annotations

import inspect
import struct

import aioice
import aioice.ice
import aioice.turn
import aiortc
import aiortc.rtcicetransport
import pytest
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from pylibsrtp import Policy, Session

from bridge.media.aiortc_adapter import fast_protect


def params(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


def source(fn: object) -> str:
    return inspect.getsource(fn)  # type: ignore[arg-type]


def test_versions_are_the_tested_ones() -> None:
    assert aiortc.__version__.startswith("1.16."), f"aiortc {aiortc.__version__}: adapter tested on 1.16"
    assert aioice.__version__.startswith("0.13."), f"aioice {aioice.__version__}: adapter tested on 0.13"


def test_the_socket_callback_and_srtp_sessions_the_tap_uses() -> None:
    """PeerLink._tap replaces `Connection.data_received(data, component)` per connection and
    unprotects with `RTCDtlsTransport._rx_srtp`; sending protects with `_tx_srtp`."""
    assert params(aioice.Connection.data_received) == ["self", "data", "component"]
    assert "self.receiver.data_received(data, self.local_candidate.component)" in source(
        aioice.ice.StunProtocol.datagram_received), "the socket callback the tap replaces moved"
    init = source(RTCDtlsTransport.__init__)
    assert "self._rx_srtp" in init and "self._tx_srtp" in init
    assert "self._rx_srtp.unprotect" in source(RTCDtlsTransport)
    assert "self._tx_srtp" in source(RTCDtlsTransport._send_rtp), "SRTP session attribute moved"
    assert "self._connection = Connection(" in source(aiortc.rtcicetransport.RTCIceGatherer.__init__)


def test_ice_internals_used_for_sending_and_guarding() -> None:
    sendto = source(aioice.Connection.sendto)
    assert "self._nominated.get(component)" in sendto
    assert "active_pair.protocol.send_data(data, active_pair.remote_addr)" in sendto
    assert "self.transport.sendto(data, addr)" in source(aioice.ice.StunProtocol.send_data)
    assert "self.receiver.request_received(message, addr, self)" in source(
        aioice.ice.StunProtocol.datagram_received)
    assert params(aioice.Connection.request_received) == ["self", "message", "addr", "protocol"]
    assert "get_host_addresses(" in source(aioice.Connection.gather_candidates)


def test_the_host_candidate_gathering_the_port_range_replaces() -> None:
    """configure_host_candidates replaces `Connection.get_component_candidates` when ports or
    announced addresses are set: it binds host sockets itself and leaves TURN to the stock code."""
    stock = aioice.Connection.get_component_candidates
    assert params(stock) == ["self", "component", "addresses", "timeout"]
    body = source(stock)
    assert "for address in addresses:" in body and "local_addr=(address, 0)" in body
    assert "self._protocols += host_protocols" in body
    assert "if self.turn_server:" in body and "relayed_candidate(" in body
    assert params(aioice.ice.StunProtocol.__init__) == ["self", "receiver"]
    assert isinstance(aioice.turn.UDP_SOCKET_BUFFER_SIZE, int)


def test_the_decoded_frame_queue_the_simulator_bounds() -> None:
    """bench/sim's receiver skips stale frames on `RemoteStreamTrack._queue` (an asyncio.Queue the
    decoder thread fills; None ends the track)."""
    from aiortc.rtcrtpreceiver import RemoteStreamTrack, decoder_worker

    assert "self._queue: asyncio.Queue = asyncio.Queue()" in source(RemoteStreamTrack.__init__)
    assert "frame = await self._queue.get()" in source(RemoteStreamTrack.recv)
    assert "output_q.put(frame)" in source(decoder_worker)


def test_sender_and_transceiver_fields() -> None:
    run_rtcp = source(RTCRtpSender._run_rtcp)
    assert "await self._send_rtcp(packets)" in run_rtcp
    assert "self.__rtcp_started.set()" in run_rtcp and "self.__rtcp_exited.set()" in run_rtcp
    assert "self.__rtcp_task = asyncio.ensure_future(self._run_rtcp())" in source(RTCRtpSender.send)
    stop = source(RTCRtpSender.stop)
    assert "self.__rtcp_started.wait()" in stop and "self.__rtcp_exited.wait()" in stop
    sender = source(RTCRtpSender.__init__)
    assert "self._ssrc = " in sender and "self._rtx_ssrc = " in sender
    assert "self._stream_id = " in sender, "the program slots' shared stream id moved"
    init = source(RTCRtpTransceiver.__init__)
    assert "self._codecs" in init and "self._headerExtensions" in init


def test_fast_protect_is_pylibsrtps_protect() -> None:
    def session() -> Session:
        policy = Policy(key=bytes(range(30)), ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                        srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
        return Session(policy)

    stock, ours = session(), fast_protect(session())
    for seq in (1, 2, 65535, 0, 1):
        packet = struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, 0xCAFE) + bytes(range(200))
        assert ours(packet) == stock.protect(packet)
    with pytest.raises(ValueError):
        ours(b"\x80" * 1500)
