"""A site page over https:// in real Chromium: the rehearsal certificate trusted precisely (its
public key pinned, not every error ignored), Socket.IO over WSS, the program decoded (issue 16)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser

from bridge.roles import Role
from signaling.settings import Settings
from signaling.tls import fingerprints, server_context, write_certificate
from tests.conftest import RunningServer, running
from tests.web.conftest import chromium
from tests.web.test_site_page import decodes_the_program

pytestmark = pytest.mark.browser


@pytest.fixture
async def tls_server(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[RunningServer, Path]]:
    cert, key = write_certificate(tmp_path / "tls", ["127.0.0.1"])
    settings = replace(settings, server=replace(settings.server, tls_cert=str(cert), tls_key=str(key)))
    async with running(settings, server_context(cert, key)) as server:
        yield server, cert


@pytest.fixture
async def pinned_browser(tls_server: tuple[RunningServer, Path]) -> AsyncIterator[Browser]:
    spki = fingerprints(tls_server[1].read_bytes()).spki_sha256
    async with chromium(f"--ignore-certificate-errors-spki-list={spki}") as b:
        yield b


async def test_a_site_joins_over_https_and_wss_and_decodes_the_program(
        tls_server: tuple[RunningServer, Path], pinned_browser: Browser) -> None:
    server, cert = tls_server
    assert server.url.startswith("https://127.0.0.1:")
    hall = server.participant(Role.HALL, width=640, height=360, fps=30, ca_file=str(cert))
    await hall.connect()
    await hall.join_media()
    page = await pinned_browser.new_page(viewport={"width": 1280, "height": 720})
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        token = server.token(Role.SITE, "stttt-thua-thien-hue")
        await page.goto(f"{server.url}/site.html#token={token}")
        assert await page.evaluate("() => window.isSecureContext") is True
        await page.wait_for_selector("#join:visible")
        await page.click("#join")
        await decodes_the_program(page)
        assert sockets and all(u.startswith("wss://127.0.0.1:") for u in sockets), sockets
    finally:
        await page.close()
        await hall.close()
    # the same port over plain HTTP gets nothing (no page, no redirect to follow)
    async with aiohttp.ClientSession() as plain:
        with pytest.raises((aiohttp.ClientError, ConnectionError)):
            async with plain.get(f"http://127.0.0.1:{server.settings.server.port}/site.html"):
                pass


async def test_an_unpinned_browser_refuses_the_rehearsal_certificate(
        tls_server: tuple[RunningServer, Path], browser: Browser) -> None:
    """Only the pinned key is trusted: a browser without the pin refuses the page."""
    server, _ = tls_server
    page = await browser.new_page()
    try:
        with pytest.raises(Exception, match="ERR_CERT"):
            await page.goto(f"{server.url}/site.html")
    finally:
        await page.close()
