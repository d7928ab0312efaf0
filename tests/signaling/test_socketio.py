"""The Socket.IO contract of docs/protocol.md, against the real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.sio.on("*", self._any)
        self.sio.on("connect_error", self._refused)

    async def _refused(self, data: Any = None) -> None:
        self.events.append(("connect_error", data))

    async def _any(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))

    def of(self, name: str) -> list[Any]:
        return [d for e, d in self.events if e == name]

    async def connect(self, token: object) -> None:
        await self.sio.connect(self.url, auth={"token": token}, transports=["websocket"], wait_timeout=5)

    async def call(self, event: str, payload: Any = None) -> Any:
        return await self.sio.call(event, payload, timeout=5)


@pytest.fixture
async def client(server: RunningServer):  # type: ignore[no-untyped-def]
    c = Client(server.url)
    yield c
    if c.sio.connected:
        await c.sio.disconnect()


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", 12])
async def test_connection_without_a_valid_token_is_refused(client: Client, token: object) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(token)
    refusal = client.of("connect_error")
    assert len(refusal) == 1 and refusal[0]["data"] == {"code": "unauthorized"}
    assert ("token is required" if token in (None, "", 12) else "invalid token") in refusal[0]["message"]
    assert client.of("welcome") == []


async def test_expired_token_is_refused(server: RunningServer, client: Client) -> None:
    token = server.bridge.tokens.issue(Role.SITE, "stttt-ha-noi", ttl_s=-1)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(token)
    assert client.of("connect_error") == [{"message": "token expired", "data": {"code": "unauthorized"}}]
    assert server.bridge.conference.version == 0


async def test_welcome_carries_identity_roster_and_state(server: RunningServer, client: Client) -> None:
    await client.connect(server.token(Role.SITE, "stttt-an-giang"))
    assert await wait_until(lambda: bool(client.of("welcome")), 5)
    welcome = client.of("welcome")[0]
    assert welcome["you"]["role"] == "site"
    assert welcome["you"]["site"]["name"] == "Sở Thông tin và Truyền thông An Giang"
    assert len(welcome["roster"]) == 67 and welcome["hall"] == "hall"
    media = welcome["media"]
    assert media["send"] is True and media["receive"] is True
    assert [(line["kind"], line["send"], line["slot"], line.get("layer")) for line in media["lines"]] == [
        ("audio", True, "program-audio", None), ("video", True, "program-video", "high"),
        ("video", True, None, "low"), ("audio", False, "hall-audio", None),
        ("audio", False, "speaker-audio", None), ("video", True, "content", None)]
    assert welcome["state"]["program"] == "hall"
    assert welcome["state"]["sites"]["stttt-an-giang"]["presence"] == "signaling"


async def test_presence_changes_are_broadcast_with_increasing_versions(server: RunningServer) -> None:
    console, site = Client(server.url), Client(server.url)
    try:
        await console.connect(server.token(Role.TECHNICIAN))
        await site.connect(server.token(Role.SITE, "stttt-yen-bai"))
        assert await wait_until(lambda: bool(console.of("state")), 5)
        await site.sio.disconnect()
        assert await wait_until(lambda: len(console.of("state")) >= 2, 5)
        patches = console.of("state")
        versions = [p["version"] for p in patches]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        assert patches[0]["sites"]["stttt-yen-bai"]["presence"] == "signaling"
        assert patches[-1]["sites"]["stttt-yen-bai"]["presence"] == "offline"
        snapshot = await console.call("state:get", {})
        assert snapshot["ok"] and snapshot["state"]["version"] == versions[-1]
    finally:
        for c in (console, site):
            if c.sio.connected:
                await c.sio.disconnect()


@pytest.mark.parametrize(("event", "payload", "code"), [
    ("media:offer", None, "bad_request"),
    ("media:offer", "v=0", "bad_request"),
    ("media:offer", {"type": "answer", "sdp": "v=0\r\n"}, "bad_request"),
    ("media:offer", {"type": "offer", "sdp": "hello"}, "bad_request"),
    ("media:offer", {"type": "offer", "sdp": "v=0\r\n", "site": "hall"}, "bad_request"),
    ("media:offer", {"type": "offer", "sdp": "v=0\r\n" + "a" * 600_000}, "too_large"),
    ("media:offer", {"type": "offer", "sdp": "v=0\r\nm=garbage\r\n"}, "bad_sdp"),
    ("state:get", {"version": 3}, "bad_request"),
    ("media:leave", [1, 2], "bad_request"),
    ("floor:seize", {}, "unknown_event"),
])
async def test_bad_input_gets_a_clear_error_and_changes_nothing(
    server: RunningServer, client: Client, event: str, payload: Any, code: str
) -> None:
    await client.connect(server.token(Role.SITE, "stttt-soc-trang"))
    assert await wait_until(lambda: bool(client.of("welcome")), 5)
    version = server.bridge.conference.version
    reply = await client.call(event, payload)
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    assert server.bridge.conference.version == version
    assert server.bridge.hub.link_count() == 0


async def test_a_second_page_of_the_same_site_takes_its_slot(server: RunningServer) -> None:
    first, second = Client(server.url), Client(server.url)
    token = server.token(Role.SITE, "stttt-ca-mau")
    try:
        await first.connect(token)
        await second.connect(token)
        assert await wait_until(lambda: not first.sio.connected, 5), "the older page is let go"
        await asyncio.sleep(0.2)
        assert server.bridge.conference.sites["stttt-ca-mau"].presence == "signaling"
    finally:
        for c in (first, second):
            if c.sio.connected:
                await c.sio.disconnect()


async def test_a_foreign_origin_is_refused(server: RunningServer) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(server.url, auth={"token": server.token(Role.TECHNICIAN)},
                          headers={"Origin": "http://evil.example"}, transports=["websocket"],
                          wait_timeout=5)
    assert not sio.connected
    await sio.shutdown()
    if sio.eio.http is not None:  # the client keeps its HTTP session after a refused connect
        await sio.eio.http.close()


async def test_the_own_origin_is_accepted(server: RunningServer) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(server.url, auth={"token": server.token(Role.TECHNICIAN)},
                      headers={"Origin": server.url}, transports=["websocket"], wait_timeout=5)
    assert sio.connected
    await sio.disconnect()


async def test_many_pages_joining_at_once_from_one_address_are_all_let_in(server: RunningServer) -> None:
    """The address cap counts only connections still without a token: a whole meeting behind one
    address (a proxy, a NAT) joins at once."""
    count = len(server.bridge.roster) + 10  # every site and the consoles
    assert count <= server.settings.server.pending_per_address
    pages = [Client(server.url) for _ in range(count)]
    try:
        await asyncio.gather(*(p.connect(server.bridge.tokens.issue(Role.OBSERVER)) for p in pages))
        assert all(p.sio.connected for p in pages)
    finally:
        await asyncio.gather(*(p.sio.disconnect() for p in pages if p.sio.connected))
