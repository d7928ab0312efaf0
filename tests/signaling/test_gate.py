"""The gate: connections that never present a token are closed; caps per address and per link."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import aiohttp
import pytest
import socketio

from bridge.roles import Role
from signaling.settings import Settings
from tests.conftest import RunningServer
from tests.signaling.test_socketio import Client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A small gate, so that its limits are reached quickly."""
    return replace(settings, server=replace(settings.server, connect_deadline_s=2.0,
                                            pending_per_address=8))


async def lurker(session: aiohttp.ClientSession, url: str, closed: list[float]) -> None:
    """An Engine.IO WebSocket that answers every ping but never sends Socket.IO's CONNECT."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with session.ws_connect(ws_url) as ws:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT and message.data == "2":
                await ws.send_str("3")
    closed.append(time.monotonic())


async def test_connections_that_never_present_a_token_are_closed_at_the_deadline(
        server: RunningServer) -> None:
    deadline = server.settings.server.connect_deadline_s
    async with aiohttp.ClientSession() as session:
        member = Client(server.url)
        await member.connect(server.bridge.tokens.issue(Role.OBSERVER))
        closed: list[float] = []
        opened = time.monotonic()
        lurkers = [asyncio.create_task(lurker(session, server.url, closed)) for _ in range(6)]
        try:
            await asyncio.wait_for(asyncio.gather(*lurkers), 3 * (deadline + 1))
        finally:
            for task in lurkers:
                task.cancel()
        assert len(closed) == 6, "every lurking connection was closed"
        assert all(deadline - 0.5 <= t - opened <= 3 * (deadline + 1) for t in closed), \
            [round(t - opened, 1) for t in closed]
        assert member.sio.connected, "a page that presented its token stays"
        assert (await member.call("state:get", {}))["ok"]
        await member.sio.disconnect()
    assert server.bridge.sio.closed_at_deadline >= 6


async def test_one_address_may_hold_only_so_many_unjoined_connections(server: RunningServer) -> None:
    cap = server.settings.server.pending_per_address
    ws_url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
        for _ in range(cap):
            await stack.enter_async_context(session.ws_connect(ws_url))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url)
        assert refused.value.status == 401
    # once they are gone, the address may connect again
    joined = Client(server.url)
    await joined.connect(server.bridge.tokens.issue(Role.OBSERVER))
    await joined.sio.disconnect()


async def test_one_link_opens_at_most_so_many_pages(server: RunningServer) -> None:
    cap = server.settings.server.connections_per_token
    token = server.bridge.tokens.issue(Role.OBSERVER)
    pages = [Client(server.url) for _ in range(cap + 1)]
    try:
        for page in pages[:cap]:
            await page.connect(token)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await pages[cap].connect(token)
        refusal = pages[cap].of("connect_error")
        assert refusal and refusal[0]["data"] == {"code": "too_many_connections"}
        other = Client(server.url)  # another link of the same role is not counted with it
        await other.connect(server.bridge.tokens.issue(Role.OBSERVER))
        await other.sio.disconnect()
        await pages[0].sio.disconnect()
        await asyncio.sleep(0.2)
        again = Client(server.url)
        await again.connect(token)  # a page closed frees its place
        await again.sio.disconnect()
    finally:
        for page in pages:
            if page.sio.connected:
                await page.sio.disconnect()


def test_the_socketio_hooks_the_gate_overrides_are_still_there() -> None:
    """GatedServer overrides three private python-socketio hooks: fail loudly when they move."""
    import inspect

    for name, params in [("_handle_eio_connect", ["eio_sid", "environ"]),
                         ("_handle_connect", ["eio_sid", "namespace", "data"]),
                         ("_handle_eio_disconnect", ["eio_sid", "reason"])]:
        hook = getattr(socketio.AsyncServer, name)
        assert list(inspect.signature(hook).parameters)[1:] == params, name
    assert callable(socketio.AsyncManager.sid_from_eio_sid)
