"""Behind a reverse proxy: X-Forwarded-* are believed from `server.trusted_proxies` only.

The proxy is a client bound to 127.0.0.2 (trusted); everyone else connects from 127.0.0.1. The
per-address limit on connections that have not yet presented a token is the limit a forged
X-Forwarded-For would dodge.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import aiohttp
import pytest

from signaling.settings import Settings
from tests.conftest import RunningServer

PROXY = "127.0.0.2"
CAP = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, server=replace(settings.server, pending_per_address=CAP,
                                            trusted_proxies=[f"{PROXY}/32"]))


def session_from(address: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


def ws_url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


async def test_forged_forwarded_for_from_an_untrusted_address_changes_nothing(
        server: RunningServer) -> None:
    async with session_from("127.0.0.1") as session, contextlib.AsyncExitStack() as stack:
        for n in range(CAP):  # each claims to be someone else
            await stack.enter_async_context(session.ws_connect(
                ws_url(server), headers={"X-Forwarded-For": f"127.9.0.{n + 1}"}))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(server), headers={"X-Forwarded-For": "127.9.0.99"})
        assert refused.value.status == 401, "the limit still applies to the real peer"
        async with session.get(server.url + "/healthz",
                               headers={"X-Forwarded-Proto": "https"}) as response:
            assert response.status == 200
            assert "Strict-Transport-Security" not in response.headers


async def test_a_trusted_proxy_names_the_client(server: RunningServer) -> None:
    async with session_from(PROXY) as proxy, contextlib.AsyncExitStack() as stack:
        for _ in range(CAP):  # one client behind the proxy, up to its limit
            await stack.enter_async_context(proxy.ws_connect(
                ws_url(server), headers={"X-Forwarded-For": "127.9.0.1"}))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await proxy.ws_connect(ws_url(server), headers={"X-Forwarded-For": "127.9.0.1"})
        assert refused.value.status == 401, "that client is at its own limit"
        # another client through the same proxy is not held to the first one's count; a chain
        # names the right-most address that is not the proxy itself
        for forwarded in ("127.9.0.2", f"127.9.0.3, 127.9.0.4, {PROXY}"):
            for _ in range(CAP):
                await stack.enter_async_context(proxy.ws_connect(
                    ws_url(server), headers={"X-Forwarded-For": forwarded}))
        pending = server.bridge.sio._by_address
        assert dict(pending) == {"127.9.0.1": CAP, "127.9.0.2": CAP, "127.9.0.4": CAP}
        async with proxy.get(server.url + "/healthz", headers={
                "X-Forwarded-For": "127.9.0.1", "X-Forwarded-Proto": "https"}) as response:
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_a_malformed_forwarded_header_from_the_proxy_is_a_bad_request(
        server: RunningServer) -> None:
    async with session_from(PROXY) as proxy, proxy.get(server.url + "/healthz",
                         headers={"X-Forwarded-For": "not-an-address"}) as response:
        assert response.status == 400
    assert not server.bridge.sio._by_address
