"""The console lists the roster with each site's connection state, live, in real Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from bridge.roles import Role
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser
SITES = ["bo-tttt", "stttt-ha-noi", "stttt-nghe-an", "stttt-can-tho"]


async def test_console_shows_every_site_and_who_is_live(
    server: RunningServer, browser: Browser, artifacts: Path
) -> None:
    hall = server.participant(Role.HALL)
    sites = [server.participant(Role.SITE, s, width=320, height=180, fps=15) for s in SITES]
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        await page.goto(f"{server.url}/console.html#token={server.token(Role.TECHNICIAN)}")
        await page.wait_for_selector(".tile[data-site='stttt-ca-mau']")
        assert await page.locator(".tile").count() == 67
        await page.wait_for_selector("#summary[data-live='0']")
        for p in [hall, *sites]:
            await p.connect()
            await p.join_media()
        await page.wait_for_selector(f"#summary[data-live='{len(SITES)}']", timeout=15_000)
        assert await page.text_content("#summary") == f"Trực tuyến {len(SITES)}/66"
        for site_id in SITES:
            tile = page.locator(f".tile[data-site='{site_id}']")
            assert await tile.get_attribute("data-presence") == "live"
            assert "Trực tuyến" in (await tile.text_content() or "")
        offline = page.locator(".tile[data-site='stttt-ca-mau']")
        assert await offline.get_attribute("data-presence") == "offline"
        assert "Chưa vào" in (await offline.text_content() or "")
        hall_tile = page.locator(".tile[data-site='hall']")
        assert "program" in (await hall_tile.get_attribute("class") or "")
        await page.screenshot(path=str(artifacts / "console-page.png"))

        await sites[0].close()  # a site leaves: the console shows it at once
        await page.wait_for_selector(f"#summary[data-live='{len(SITES) - 1}']", timeout=10_000)
        tile = page.locator(f".tile[data-site='{SITES[0]}']")
        assert await tile.get_attribute("data-presence") == "offline"

        await page.click("#lang")  # English on demand
        assert await page.text_content("#summary") == f"Live {len(SITES) - 1}/66"
    finally:
        await page.close()
        for p in [hall, *sites]:
            await p.close()
