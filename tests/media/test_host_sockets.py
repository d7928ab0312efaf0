"""The bridge's host candidates within ice.port_range: a taken port is skipped, a full range gives
no host candidate and is counted (hallbridge_ice_ports_exhausted_total), announced addresses
replace the bound one. Real aioice connections and sockets."""

from __future__ import annotations

import contextlib
import socket

import aioice

from bridge.media.aiortc_adapter import HostSockets

SIZE = 16


def occupied_range() -> tuple[range, list[socket.socket]]:
    """SIZE consecutive UDP ports on 127.0.0.1, all bound here (retrying where one is in use)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + SIZE > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(first, first + SIZE):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", port))
            return range(first, first + SIZE), held
        except OSError:
            for s in held:
                s.close()
    raise RuntimeError("no free run of ports")


async def gathered(hosts: HostSockets) -> tuple[aioice.Connection, list[aioice.Candidate]]:
    connection = aioice.Connection(ice_controlling=False, use_ipv6=False)
    hosts.adopt(connection)
    await connection.gather_candidates()
    return connection, [c for c in connection.local_candidates if c.type == "host"]


async def test_a_full_range_offers_no_host_candidate_and_is_counted() -> None:
    ports, held = occupied_range()
    hosts = HostSockets(["127.0.0.1"], [], ports)
    try:
        connection, candidates = await gathered(hosts)
        assert candidates == [] and hosts.exhausted == 1
        await connection.close()
        free = ports[5]
        held[5].close()  # one port comes free: the next connection takes exactly it
        connection, candidates = await gathered(hosts)
        assert [(c.host, c.port) for c in candidates] == [("127.0.0.1", free)]
        assert hosts.exhausted == 1
        await connection.close()
    finally:
        for s in held:
            with contextlib.suppress(OSError):
                s.close()


async def test_ports_are_taken_in_turn_and_the_public_address_is_announced() -> None:
    ports, held = occupied_range()
    for s in held:
        s.close()
    hosts = HostSockets(["127.0.0.1"], ["127.0.0.9"], ports)
    connections, seen = [], []
    for _ in range(3):
        connection, candidates = await gathered(hosts)
        connections.append(connection)
        assert [c.host for c in candidates] == ["127.0.0.9"]  # announced, not the bound address
        seen.append(candidates[0].port)
        bound = connection._protocols[0].transport.get_extra_info("sockname")
        assert bound == ("127.0.0.1", candidates[0].port)
    assert seen == [ports[0], ports[1], ports[2]]  # a cursor that moves on
    await connections[0].close()
    connection, candidates = await gathered(hosts)  # ports[0] is free again but used last
    assert candidates[0].port == ports[3]
    for c in [*connections[1:], connection]:
        await c.close()
