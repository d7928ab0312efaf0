"""Sessions end with their link: `hallbridge revoke` disconnects it on every process at once, and
a session outlives its token's expiry by at most a second."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import socketio

from bridge.roles import Role
from signaling.settings import REPO_ROOT
from tests.media.helpers import wait_until
from tests.store.conftest import ServerProcess
from tests.store.test_stores import tokens_for


class Page:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.ended: list[tuple[float, str]] = []
        self.gone: float | None = None
        self.sio.on("session:ended", self._ended)
        self.sio.on("disconnect", self._disconnected)

    async def _ended(self, data: dict[str, Any]) -> None:
        self.ended.append((time.monotonic(), data["reason"]))

    async def _disconnected(self, reason: Any = None) -> None:
        self.gone = time.monotonic()

    async def connect(self) -> None:
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"],
                               wait_timeout=10)


async def test_a_revoked_link_is_disconnected_on_every_process_and_cannot_act(
        tmp_path: Path, prefix: str) -> None:
    tokens = tokens_for(tmp_path)
    a, b = ServerProcess(tmp_path, prefix), ServerProcess(tmp_path, prefix)
    await a.start()
    await b.start()
    token = tokens.issue(Role.MODERATOR)
    pages = [Page(a.url, token), Page(b.url, token)]
    other = Page(a.url, tokens.issue(Role.MODERATOR))
    try:
        for page in (*pages, other):
            await page.connect()
        assert (await pages[0].sio.call("mute:all", {}, timeout=10))["ok"]
        revoke = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signaling.cli", "revoke", token, cwd=REPO_ROOT, env=a.env,
            stdout=subprocess.DEVNULL)
        assert await revoke.wait() == 0
        revoked = time.monotonic()
        if pages[1].sio.connected:  # an event sent at once is refused, never applied
            reply = await pages[1].sio.call("mute:all", {}, timeout=10)
            assert reply["ok"] is False and reply["error"]["code"] == "unauthorized", reply
        assert await wait_until(lambda: all(p.gone is not None for p in pages), 6), \
            "both processes end the revoked link's sessions"
        assert all(p.ended and p.ended[0][1] == "revoked" for p in pages), "each page is told why"
        delays = [p.gone - revoked for p in pages if p.gone is not None]
        print(f"revoke to disconnect: {', '.join(f'{d:.2f} s' for d in delays)}")
        assert max(delays) < 2 * 3, delays  # the check runs every second
        assert other.sio.connected, "another link is untouched"
        assert (await other.sio.call("mute:all", {}, timeout=10))["ok"]
        again = Page(b.url, token)
        with contextlib.suppress(socketio.exceptions.ConnectionError):
            await again.connect()
        assert not again.sio.connected, "and it cannot come back"
    finally:
        for page in (*pages, other):
            if page.sio.connected:
                await page.sio.disconnect()
        a.stop()
        b.stop()


async def test_a_session_ends_when_its_token_expires(tmp_path: Path, prefix: str) -> None:
    tokens = tokens_for(tmp_path)
    server = ServerProcess(tmp_path, prefix)
    await server.start()
    page = Page(server.url, tokens.issue(Role.OBSERVER, ttl_s=3))
    expires = time.monotonic() + 3
    try:
        await page.connect()
        assert (await page.sio.call("state:get", {}, timeout=10))["ok"]
        assert await wait_until(lambda: page.gone is not None, 3 + 3 * 2)
        assert page.ended and page.ended[0][1] == "expired"
        assert page.gone is not None and page.gone >= expires - 1.0  # exp is whole seconds
    finally:
        if page.sio.connected:
            await page.sio.disconnect()
        server.stop()
