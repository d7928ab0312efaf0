"""The outbox: a loop turn's packets for one site leave as few writes as possible (UDP GSO for
equal-size runs), and the site receives exactly the datagrams queued, in order, on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

from bridge.media.aiortc_adapter import Outbox, Sink, gso_runs


def test_runs_are_equal_sizes_with_a_shorter_last() -> None:
    assert gso_runs([]) == []
    assert gso_runs([1200]) == [(0, 1)]
    assert gso_runs([1200, 1200, 1200, 700]) == [(0, 4)], "a frame: equal packets, a shorter last"
    assert gso_runs([1200, 1200, 700, 1200]) == [(0, 3), (3, 4)]
    assert gso_runs([90, 1200, 1200, 90]) == [(0, 1), (1, 4)], "audio before, audio after"
    assert gso_runs([90, 90, 1200]) == [(0, 2), (2, 3)], "a longer packet starts a new run"
    assert gso_runs([1000] * 70, limit=32) == [(0, 32), (32, 64), (64, 70)]
    assert gso_runs([1000, 500, 500]) == [(0, 2), (2, 3)], "only the last of a run may be shorter"
    assert gso_runs([2000] * 40, max_bytes=60_000) == [(0, 30), (30, 40)], "64 KiB per write at most"


class RelayTransport:
    """A TURN relay's transport as aioice has it: no socket of its own, datagrams one by one."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def get_extra_info(self, name: str) -> None:
        return None

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)


async def test_a_relayed_site_gets_its_packets_through_the_relay_one_by_one() -> None:
    outbox, relay = Outbox(), RelayTransport()
    sink = Sink(lambda packet: packet, relay, ("127.0.0.1", 9), outbox)
    packets = [rtp(1, n, 1200) for n in range(4)]
    for packet in packets:
        sink.push(packet)
    await asyncio.sleep(0)
    outbox.flush()
    assert relay.sent == packets and outbox.dropped == 0
    sink.close()


async def test_one_site_failing_does_not_silence_the_others() -> None:
    outbox, good = Outbox(), RelayTransport()

    class Broken(RelayTransport):
        def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
            raise RuntimeError("a bug in one site's path")

    broken = Sink(lambda packet: packet, Broken(), ("127.0.0.1", 9), outbox)
    fine = Sink(lambda packet: packet, good, ("127.0.0.1", 10), outbox)
    broken.push(rtp(1, 1, 100))
    fine.push(rtp(1, 1, 100))
    outbox.flush()
    assert good.sent == [rtp(1, 1, 100)] and outbox.dropped == 1
    fine.push(rtp(1, 2, 100))  # and the next turn is written as usual
    outbox.flush()
    assert len(good.sent) == 2


class Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append(data)


@contextlib.asynccontextmanager
async def loopback_site() -> AsyncIterator[tuple[Outbox, Sink, Receiver]]:
    """A sink on a real UDP socket writing to a receiving socket on loopback (no SRTP)."""
    loop = asyncio.get_running_loop()
    rx_transport, receiver = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
    tx_transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                          local_addr=("127.0.0.1", 0))
    outbox = Outbox()
    sink = Sink(lambda packet: packet, tx_transport, rx_transport.get_extra_info("sockname"), outbox)
    try:
        yield outbox, sink, receiver
    finally:
        sink.close()
        rx_transport.close()
        tx_transport.close()


def rtp(ssrc: int, seq: int, size: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, ssrc) + bytes([seq % 256]) * (size - 12)


def streams(datagrams: list[bytes]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for d in datagrams:
        out.setdefault(struct.unpack("!I", d[8:12])[0], []).append(d)
    return out


async def test_a_site_receives_every_datagram_each_stream_in_order() -> None:
    async with loopback_site() as (outbox, sink, receiver):
        seq = iter(range(10_000))
        turns = []
        for _ in range(20):  # a frame (equal packets, a shorter last) with audio in between
            turns.append([rtp(1, next(seq), 1200), rtp(1, next(seq), 1200), rtp(2, next(seq), 90),
                          rtp(1, next(seq), 1200), rtp(1, next(seq), 700)])
        turns.append([rtp(1, next(seq), 1200 - i) for i in range(4)])  # sizes all different
        for turn in turns:
            for packet in turn:
                sink.push(packet)
            await asyncio.sleep(0.01)
        expected = [p for turn in turns for p in turn]
        for _ in range(100):
            if len(receiver.datagrams) >= len(expected):
                break
            await asyncio.sleep(0.01)
        assert sorted(receiver.datagrams) == sorted(expected), "one datagram per packet, intact"
        assert streams(receiver.datagrams) == streams(expected), "each stream in its order"
        assert outbox.dropped == 0
        assert sink.gso, "equal-size runs went out as GSO writes (Linux >= 4.18)"
        sink.gso = False  # the kernel without GSO: one write per packet, the same datagrams
        receiver.datagrams.clear()
        for packet in turns[0]:
            sink.push(packet)
        await asyncio.sleep(0.05)
        assert streams(receiver.datagrams) == streams(turns[0])


async def test_a_discarded_sink_writes_nothing_of_its_turn() -> None:
    async with loopback_site() as (outbox, sink, receiver):
        sink.push(b"x" * 100)
        outbox.discard(sink)  # the site left within the turn
        await asyncio.sleep(0.05)
        assert receiver.datagrams == []
        sink.push(b"y" * 100)  # and a later turn is written as usual
        await asyncio.sleep(0.05)
        assert receiver.datagrams == [b"y" * 100]
