"""TURN credentials of each client's own in `welcome` (coturn's use-auth-secret scheme); the
shared secret never reaches a client (issue 16)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import socketio

from bridge.roles import Role
from signaling.settings import Settings, SettingsError
from tests.conftest import RunningServer, running

SECRET = "bí-mật-turn-của-hội-nghị"  # coturn's static-auth-secret
URLS = ["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"]


@pytest.fixture
async def turn_server(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    monkeypatch.setenv("HALLBRIDGE_TURN_SECRET", SECRET)
    async with running(replace(settings, turn=replace(settings.turn, urls=URLS, ttl_s=3600))) as server:
        yield server


async def welcome_of(server: RunningServer, token: str) -> dict[str, object]:
    sio = socketio.AsyncClient(reconnection=False)
    got: list[dict[str, object]] = []
    sio.on("welcome", got.append)
    await sio.connect(server.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        for _ in range(100):
            if got:
                return got[0]
            await sio.sleep(0.05)
        raise AssertionError("no welcome")
    finally:
        await sio.disconnect()


async def test_every_client_gets_expiring_credentials_of_its_own(turn_server: RunningServer) -> None:
    site = await welcome_of(turn_server, turn_server.token(Role.SITE, "stttt-ha-noi"))
    observer = await welcome_of(turn_server, turn_server.token(Role.OBSERVER))
    servers = site["ice"]["servers"]  # type: ignore[index]
    assert len(servers) == 1 and servers[0]["urls"] == URLS
    expiry, _, who = servers[0]["username"].partition(":")
    assert who == "stttt-ha-noi" and 3500 < int(expiry) - time.time() <= 3600
    expected = hmac.new(SECRET.encode(), servers[0]["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(servers[0]["credential"]) == expected
    other = observer["ice"]["servers"][0]  # type: ignore[index]
    assert other["username"].split(":", 1)[1].startswith("observer-")
    assert other["credential"] != servers[0]["credential"]
    assert SECRET not in json.dumps(site, ensure_ascii=False) + json.dumps(observer, ensure_ascii=False)


async def test_without_turn_the_welcome_names_no_server(server: RunningServer) -> None:
    welcome = await welcome_of(server, server.token(Role.SITE, "stttt-ha-noi"))
    assert welcome["ice"] == {"servers": []}


def test_turn_urls_without_a_secret_are_refused(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HALLBRIDGE_TURN_SECRET", raising=False)
    with pytest.raises(SettingsError, match="TURN secret"):
        replace(settings, turn=replace(settings.turn, urls=URLS)).turn_secret()
