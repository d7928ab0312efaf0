"""A real coturn (Debian's, on loopback, `use-auth-secret`) takes the credentials hallbridge gives
a client in `welcome` — a relay allocation over TCP succeeds — and refuses a tampered and an
expired one (issue 16). The browser-through-TURN test is still to come."""

from __future__ import annotations

import asyncio
import time

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from signaling.turn import credentials
from tests.conftest import TURN_SECRET as SECRET


async def allocate(port: int, username: str, password: str) -> tuple[str, int]:
    transport, _ = await asyncio.wait_for(create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", port), username, password, transport="tcp"), 10)
    try:
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        return relayed
    finally:
        transport.close()


async def test_coturn_accepts_a_fresh_credential_and_refuses_tampered_and_expired_ones(coturn: int) -> None:
    urls = [f"turn:127.0.0.1:{coturn}?transport=tcp"]
    fresh = credentials(SECRET, "stttt-ha-noi", time.time(), 3600, urls)
    relayed = await allocate(coturn, fresh["username"], fresh["credential"])
    assert relayed[0] == "127.0.0.1" and relayed[1] > 0, "a relay address was allocated"
    tampered = fresh["credential"][:-4] + ("AAA=" if not fresh["credential"].endswith("AAA=") else "BBB=")
    other_site = fresh["username"].replace("stttt-ha-noi", "stttt-da-nang")
    expired = credentials(SECRET, "stttt-ha-noi", time.time() - 7200, 3600, urls)
    for username, password in ((fresh["username"], tampered),
                               (other_site, fresh["credential"]),  # no borrowing another's
                               (expired["username"], expired["credential"])):
        with pytest.raises(TransactionFailed) as refused:
            await allocate(coturn, username, password)
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401, (username, str(refused.value))
